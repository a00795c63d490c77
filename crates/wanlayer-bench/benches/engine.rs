#![allow(missing_docs)] // `criterion_group!` generates an undocumented public function.
//! Wall time of the engine's data path beside the floor (criterion): send and receive, chains of
//! 1 and 32, no hook and four pass hooks, one link. `cargo xtask bench engine` runs it after the
//! instruction counts; `cargo bench -p wanlayer-bench` runs it alone.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wanlayer_bench::{Bench, HookKind, Scenario};

fn data_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("data-path");
    group.sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    for receive in [false, true] {
        for chain in [1usize, 32] {
            for hooks in [0usize, 4] {
                let scenario = Scenario { receive, chain, frame_len: 64, hooks, hook_kind: HookKind::Pass, links: 1 };
                let bench = Bench::<false>::new(scenario);
                let name = format!("{}-chain{chain}", if receive { "receive" } else { "send" });
                group.throughput(Throughput::Elements(chain as u64));
                if hooks == 0 {
                    let mut packets = Some(bench.chain(0));
                    group.bench_function(BenchmarkId::new(format!("{name}-floor"), 0), |b| {
                        b.iter(|| packets = Some(bench.floor_round(packets.take().unwrap_or_default())))
                    });
                }
                let mut packets = Some(bench.chain(0));
                group.bench_function(BenchmarkId::new(format!("{name}-engine"), hooks), |b| {
                    b.iter(|| packets = Some(bench.engine_round(packets.take().unwrap_or_default())))
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, data_path);
criterion_main!(benches);
