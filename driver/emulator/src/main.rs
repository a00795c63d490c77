//! `wanlayer-emulator --label "x64 release" --driver wanlayer.sys [--vendor wlclamp.sys]`: runs
//! every driver-in-the-loop scenario against the driver image on an emulated processor, and the
//! vendor image's `DriverEntry`; prints one line per image and one per scenario, and exits
//! non-zero when anything failed. `--sweep-every-scenario all|N` adds the low-resources sweep of
//! every scenario (every allocation, or at most `N` per scenario spread over all of them).
//!
//! Each scenario runs in a process of its own (this program again, with `--scenario N` or
//! `--vendor-entry`): the kernel model's functions are `extern "system"`, so a panic in one — a
//! rule it enforces by panicking, an import it does not model — aborts the process rather than
//! unwinding; the parent reports the child's panic message as the scenario's failure.

#[cfg(not(target_os = "windows"))]
fn main() {
    std::process::exit(match emulate::main(std::env::args().collect()) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(error) => {
            eprintln!("emulator: {error}");
            2
        }
    });
}

#[cfg(target_os = "windows")]
fn main() {}

#[cfg(not(target_os = "windows"))]
mod emulate {
    use std::path::PathBuf;
    use std::process::Command;

    use wanlayer_driver_host_tests::scenarios::low_resources::SWEEP;
    use wanlayer_driver_host_tests::scenarios::ALL;
    use wanlayer_emulator::image::{self, Arch};
    use wanlayer_emulator::run::{self, ImageFile};
    use wanlayer_kernel_model::low_resources;

    /// The tag of the line a child prints with its outcome.
    const RESULT: &str = "emulator-result";
    /// The tag of the line a child's panic hook prints.
    const PANIC: &str = "emulator-panic";

    #[derive(Default)]
    struct Arguments {
        label: String,
        driver: Option<PathBuf>,
        vendor: Option<PathBuf>,
        scenario: Option<usize>,
        probe: Option<String>,
        sweep: Option<usize>,
        sweep_scenario: Option<usize>,
        sweep_limit: Option<u64>,
        sweep_every: Option<Option<u64>>,
        sweep_from: u64,
        sweep_covered_driver_entry: Option<u64>,
        vendor_entry: bool,
    }

    fn parse(args: &[String]) -> Result<Arguments, String> {
        let mut parsed = Arguments::default();
        let mut args = args.iter().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--vendor-entry" {
                parsed.vendor_entry = true;
                continue;
            }
            let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
            match arg.as_str() {
                "--label" => parsed.label = value.clone(),
                "--driver" => parsed.driver = Some(PathBuf::from(value)),
                "--vendor" => parsed.vendor = Some(PathBuf::from(value)),
                "--probe" => parsed.probe = Some(value.clone()),
                "--sweep" => parsed.sweep = Some(value.parse().map_err(|_| format!("--sweep {value}: not a number"))?),
                "--sweep-scenario" => {
                    parsed.sweep_scenario = Some(value.parse().map_err(|_| format!("--sweep-scenario {value}: not a number"))?)
                }
                "--sweep-limit" => parsed.sweep_limit = limit(arg, value)?,
                "--sweep-from" => parsed.sweep_from = value.parse().map_err(|_| format!("--sweep-from {value}: not a number"))?,
                "--sweep-covered-driver-entry" => {
                    parsed.sweep_covered_driver_entry =
                        Some(value.parse().map_err(|_| format!("--sweep-covered-driver-entry {value}: not a number"))?)
                }
                "--sweep-every-scenario" => parsed.sweep_every = Some(limit(arg, value)?),
                "--scenario" => parsed.scenario = Some(value.parse().map_err(|_| format!("--scenario {value}: not a number"))?),
                _ => return Err(format!("unknown argument {arg}")),
            }
        }
        Ok(parsed)
    }

    /// A limit of allocations failed per scenario: a number, or `all` (`None`).
    fn limit(arg: &str, value: &str) -> Result<Option<u64>, String> {
        match value {
            "all" => Ok(None),
            limit => limit.parse().map(Some).map_err(|_| format!("{arg} {value}: neither a number nor all")),
        }
    }

    /// Runs as the parent or as a child; `Ok(false)` when something failed.
    pub fn main(args: Vec<String>) -> Result<bool, String> {
        let arguments = parse(&args)?;
        if let Some(index) = arguments.scenario {
            return child_scenario(&arguments, index);
        }
        if arguments.vendor_entry {
            return child_vendor(&arguments);
        }
        if let Some(probe) = &arguments.probe {
            return child_probe(&arguments, probe);
        }
        if let Some(index) = arguments.sweep {
            return child_sweep(&arguments, index);
        }
        if let Some(index) = arguments.sweep_scenario {
            return child_sweep_scenario(&arguments, index);
        }
        parent(&args[0], &arguments)
    }

    /// In a child: reports panics on one line, for the parent, instead of the default output.
    fn report_panics() {
        std::panic::set_hook(Box::new(|info| {
            let message = match (info.payload().downcast_ref::<String>(), info.payload().downcast_ref::<&str>()) {
                (Some(text), _) => text.clone(),
                (None, Some(text)) => (*text).to_owned(),
                _ => "a panic".to_owned(),
            };
            let location = info.location().map(|location| format!(" ({location})")).unwrap_or_default();
            eprintln!("{PANIC}\t{}{location}", message.replace('\n', " "));
            if SWEEPING.load(std::sync::atomic::Ordering::SeqCst) {
                // The run cannot unwind (panic = "abort"): torn down here, where the scenario's
                // structures are still alive, unless it stopped inside a call into the image.
                if wanlayer_kernel_model::invoke::depth() == 0 {
                    low_resources::tear_down_after_panic();
                }
                print_verdict(&low_resources::current_run(), Some(&format!("{}{location}", message.replace('\n', " "))));
            }
        }));
    }

    fn child_scenario(arguments: &Arguments, index: usize) -> Result<bool, String> {
        report_panics();
        let driver = arguments.driver.as_ref().ok_or("--driver is required")?;
        let scenario = ALL.get(index).ok_or_else(|| format!("no scenario {index}"))?;
        let outcome = run::run(&ImageFile::read(driver)?, scenario);
        let failure = outcome.failure.unwrap_or_default().replace('\n', " ");
        println!("{RESULT}\t{}\t{}\t{failure}", outcome.stack, outcome.import_calls);
        Ok(true)
    }

    fn child_probe(arguments: &Arguments, name: &str) -> Result<bool, String> {
        report_panics();
        let driver = arguments.driver.as_ref().ok_or("--driver is required")?;
        let probe = run::Probe::ALL.into_iter().find(|probe| probe.name() == name).ok_or_else(|| format!("no probe {name}"))?;
        let failure = probe.run(&ImageFile::read(driver)?).unwrap_or_default().replace('\n', " ");
        println!("{RESULT}\t0\t0\t{failure}");
        Ok(true)
    }

    /// `--sweep N`: sweep scenario `N / 2` of the low-resources scenarios, with `ExAllocatePool2`
    /// when `N` is even.
    fn child_sweep(arguments: &Arguments, index: usize) -> Result<bool, String> {
        report_panics();
        let driver = arguments.driver.as_ref().ok_or("--driver is required")?;
        let sweep = run::sweep(&ImageFile::read(driver)?, index / 2, index % 2 == 0)?;
        println!("{RESULT}\t{}\t{}\t", sweep.allocations, sweep.failed_runs);
        Ok(true)
    }

    /// The tag of a sweep child's line with the allocations a scenario's counting run made.
    const SWEEP_COUNT: &str = "emulator-sweep-count";
    /// The tag of a sweep child's line with the allocations its counting run's `DriverEntry` made,
    /// and how many of them it leaves out as already swept.
    const SWEEP_DRIVER_ENTRY: &str = "emulator-sweep-driver-entry";
    /// The tag of a sweep child's line with one run's verdict: `k`, kind, leak, statuses, detail.
    const SWEEP_VERDICT: &str = "emulator-sweep-verdict";
    /// Set in a sweep child: its panic hook tears the run down and judges it.
    static SWEEPING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    /// Prints run `k`'s verdict line.
    fn print_verdict(record: &low_resources::RunRecord, panic: Option<&str>) {
        let k = low_resources::every_run_plan().or(record.failed.map(|(index, _)| index)).unwrap_or(0);
        let (kind, detail) = match low_resources::judge(record, panic) {
            low_resources::Verdict::Passed => ("passed", String::new()),
            low_resources::Verdict::DocumentedStop => ("documented", panic.unwrap_or_default().to_owned()),
            low_resources::Verdict::BugCheck(what) => ("bugcheck", format!("{:?}: {what}", record.failed.map(|(_, kind)| kind))),
            low_resources::Verdict::Defect(what) => ("defect", format!("{:?}: {what}", record.failed.map(|(_, kind)| kind))),
        };
        let leak = record.left_after_teardown.as_ref().is_some_and(|left| !left.is_empty());
        let statuses: Vec<String> = record.returned.iter().map(|(status, routine)| format!("{status:#010x} at {routine}")).collect();
        println!("{SWEEP_VERDICT}\t{k}\t{kind}\t{leak}\t{}\t{}", statuses.join(";"), detail.replace(['\n', '\t'], " "));
    }

    /// `--sweep-scenario N --sweep-from K [--sweep-limit L] [--sweep-covered-driver-entry E]`: the
    /// counting run of scenario `N` of [`ALL`], then its runs failing allocation `k >= K` (at most
    /// `L` spread over all), one verdict line each; ends with the result line, unless a run's
    /// failed check ends the process (the hook printed its verdict: the parent resumes after it).
    /// With `E`: when this scenario's `DriverEntry` also makes `E` allocations, they are the very
    /// allocations another scenario's sweep failed (every scenario begins with the same
    /// `DriverEntry` on a fresh model), and only those after it are failed here.
    fn child_sweep_scenario(arguments: &Arguments, index: usize) -> Result<bool, String> {
        report_panics();
        SWEEPING.store(true, std::sync::atomic::Ordering::SeqCst);
        let driver = arguments.driver.as_ref().ok_or("--driver is required")?;
        let file = ImageFile::read(driver)?;
        let from = arguments.sweep_from;
        let counting = run::sweep_run(&file, index, None)?;
        if from == 0 {
            print_verdict(&counting, None);
        }
        println!("{SWEEP_COUNT}\t{}", counting.counted);
        let covered = match (arguments.sweep_covered_driver_entry, counting.counted_in_driver_entry) {
            (Some(covered), Some(made)) if covered == made => made,
            _ => 0,
        };
        println!("{SWEEP_DRIVER_ENTRY}\t{}\t{covered}", counting.counted_in_driver_entry.unwrap_or(0));
        let stride = match arguments.sweep_limit {
            Some(limit) if limit > 0 => counting.counted.div_ceil(limit).max(1),
            _ => 1,
        };
        for k in (1..=counting.counted).step_by(usize::try_from(stride).unwrap_or(usize::MAX)).filter(|&k| k >= from && k > covered) {
            let record = run::sweep_run(&file, index, Some(k))?;
            print_verdict(&record, None);
        }
        println!("{RESULT}\tdone");
        Ok(true)
    }

    /// The low-resources sweep of every scenario of [`ALL`] (`limit` allocations failed at most
    /// per scenario, `None`: all), in children resumed after each run that ends its process;
    /// prints the label's line (scenarios swept, allocations counted and failed, bug checks,
    /// leaks, documented stops, the statuses seen) and one per defect; `Ok(false)` when any run
    /// was not clean.
    fn sweep_every_scenario(program: &str, driver: &str, label: &str, limit: Option<u64>) -> Result<bool, String> {
        use std::collections::BTreeMap;
        let started = std::time::Instant::now();
        let (mut counted, mut failed, mut bug_checks, mut leaks, mut stops, mut children) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
        let mut defects = Vec::new();
        let limit_text = limit.map_or_else(|| "all".to_owned(), |limit| limit.to_string());
        // `DriverEntry`'s allocations, swept in the first scenario; the later scenarios leave out
        // the same allocations of the same `DriverEntry` (`covered`: how many were left out).
        let (mut driver_entry, mut covered) = (None::<u64>, 0u64);
        for (index, scenario) in ALL.iter().enumerate() {
            let mut from = 0u64;
            loop {
                children += 1;
                let mut command = Command::new(program);
                command
                    .args(["--driver", driver, "--sweep-scenario", &index.to_string(), "--sweep-limit", &limit_text])
                    .args(["--sweep-from", &from.to_string()]);
                if let (Some(made), None) = (driver_entry, limit) {
                    command.args(["--sweep-covered-driver-entry", &made.to_string()]);
                }
                let output = command
                    .output()
                    .map_err(|error| format!("cannot run {program}: {error}"))?;
                let stdout = String::from_utf8_lossy(&output.stdout);
                let stderr = String::from_utf8_lossy(&output.stderr);
                let mut last = None;
                for line in stdout.lines() {
                    if let Some(count) = line.strip_prefix(SWEEP_COUNT) {
                        if from == 0 {
                            counted += count.trim().parse::<u64>().unwrap_or(0);
                        }
                    }
                    if let Some(fields) = line.strip_prefix(SWEEP_DRIVER_ENTRY) {
                        let mut numbers = fields.split('\t').filter_map(|field| field.trim().parse::<u64>().ok());
                        let (made, left_out) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
                        if from == 0 {
                            covered += left_out;
                            if index == 0 && made > 0 {
                                driver_entry = Some(made);
                            }
                        }
                    }
                    let Some(fields) = line.strip_prefix(SWEEP_VERDICT) else { continue };
                    let fields: Vec<&str> = fields.trim_start_matches('\t').splitn(5, '\t').collect();
                    let [k, kind, leak, returned, detail] = fields[..] else { continue };
                    let k = k.parse::<u64>().unwrap_or(0);
                    last = Some(k);
                    if k > 0 {
                        failed += 1;
                    }
                    for status in returned.split(';').filter(|status| !status.is_empty()) {
                        *statuses.entry(status.to_owned()).or_default() += 1;
                    }
                    if leak == "true" {
                        leaks += 1;
                    }
                    match kind {
                        "documented" => stops += 1,
                        "bugcheck" => {
                            bug_checks += 1;
                            defects.push(format!("{}: failing allocation {k}: bug check: {detail}", scenario.name));
                        }
                        "defect" => defects.push(format!("{}: failing allocation {k}: {detail}", scenario.name)),
                        _ => {}
                    }
                }
                if stdout.lines().any(|line| line.starts_with(RESULT)) {
                    break;
                }
                let run = stderr.lines().filter_map(|line| line.strip_prefix(run::SWEEP_RUN)).next_back().unwrap_or("").trim().to_owned();
                let next = match last {
                    Some(k) => k + 1,
                    None => {
                        let panic = stderr
                            .lines()
                            .filter_map(|line| line.strip_prefix(PANIC))
                            .next_back()
                            .unwrap_or("no message")
                            .trim()
                            .to_owned();
                        defects.push(format!(
                            "{}: the run failing allocation {run} ended the process without a verdict: {panic}",
                            scenario.name
                        ));
                        break;
                    }
                };
                if next <= from && from > 0 {
                    defects.push(format!("{}: the sweep made no progress at allocation {from}", scenario.name));
                    break;
                }
                from = next;
            }
        }
        let statuses: Vec<String> = statuses.iter().map(|(status, count)| format!("{count} x {status}")).collect();
        println!(
            "emulator: {label}: low-resources sweep of every scenario ({}): {} scenarios swept, {failed} allocations failed of {counted} counted ({covered} left out: the first scenario's sweep failed the same {} allocations of the same DriverEntry), {bug_checks} bug checks, {leaks} leaks, {stops} documented stops, {} defects ({children} processes, {:.1} s); statuses: {}",
            if limit.is_some() { format!("at most {limit_text} allocations each") } else { "every allocation".to_owned() },
            ALL.len(),
            driver_entry.unwrap_or(0),
            defects.len(),
            started.elapsed().as_secs_f64(),
            if statuses.is_empty() { "none".to_owned() } else { statuses.join(", ") }
        );
        for defect in &defects {
            println!("emulator: FAILED {label}: low-resources sweep: {defect}");
        }
        Ok(defects.is_empty() && bug_checks == 0)
    }

    /// The low-resources sweeps, each scenario with and without `ExAllocatePool2`, each in a
    /// child: returns (allocations counted, allocations failed in turn, failures).
    fn sweeps(program: &str, driver: &str) -> Result<(u64, u64, Vec<String>), String> {
        let (mut allocations, mut failed_runs, mut failures) = (0, 0, Vec::new());
        for (index, (name, _)) in SWEEP.iter().flat_map(|scenario| [scenario, scenario]).enumerate() {
            let kernel = if index % 2 == 0 { "with ExAllocatePool2" } else { "without ExAllocatePool2" };
            let output = Command::new(program)
                .args(["--driver", driver, "--sweep", &index.to_string()])
                .output()
                .map_err(|error| format!("cannot run {program}: {error}"))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            let result = stdout.lines().find_map(|line| line.strip_prefix(RESULT)).map(|rest| rest.trim_start_matches('\t').to_owned());
            match result.as_deref().and_then(|rest| rest.split_once('\t')) {
                Some((counted, failed)) => {
                    allocations += counted.parse::<u64>().unwrap_or(0);
                    failed_runs += failed.trim().parse::<u64>().unwrap_or(0);
                }
                None => {
                    let run =
                        stderr.lines().filter_map(|line| line.strip_prefix(run::SWEEP_RUN)).next_back().unwrap_or("").trim().to_owned();
                    let panic =
                        stderr.lines().filter_map(|line| line.strip_prefix(PANIC)).next_back().unwrap_or("no message").trim().to_owned();
                    failures.push(format!("{name}, {kernel}: the run failing allocation {run} did not end cleanly: {panic}"));
                }
            }
        }
        Ok((allocations, failed_runs, failures))
    }

    fn child_vendor(arguments: &Arguments) -> Result<bool, String> {
        report_panics();
        let vendor = arguments.vendor.as_ref().ok_or("--vendor is required")?;
        let driver = arguments.driver.as_ref().ok_or("--driver is required")?;
        let outcome = run::vendor_with_driver(&ImageFile::read(driver)?, &ImageFile::read(vendor)?);
        let failure = outcome.failure.unwrap_or_default().replace('\n', " ");
        println!("{RESULT}\t{}\t{:#x}\t{failure}", outcome.stack, outcome.status);
        Ok(true)
    }

    /// A child's outcome: (stack, second field, failure).
    fn child(program: &str, args: &[&str]) -> Result<(usize, String, Option<String>), String> {
        let output = Command::new(program).args(args).output().map_err(|error| format!("cannot run {program}: {error}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let result = stdout.lines().find_map(|line| {
            line.strip_prefix(RESULT).map(|rest| rest.trim_start_matches('\t').splitn(3, '\t').map(str::to_owned).collect::<Vec<_>>())
        });
        let panic = stderr.lines().filter_map(|line| line.strip_prefix(PANIC)).next_back().map(|text| text.trim().to_owned());
        match result {
            Some(fields) if fields.len() == 3 => {
                let failure = if fields[2].is_empty() { None } else { Some(fields[2].clone()) };
                Ok((fields[0].parse().unwrap_or(0), fields[1].clone(), failure))
            }
            _ => Ok((
                0,
                String::new(),
                Some(panic.unwrap_or_else(|| format!("the run ended with {} and no result: {}", output.status, stderr.trim()))),
            )),
        }
    }

    fn parent(program: &str, arguments: &Arguments) -> Result<bool, String> {
        let driver = arguments.driver.as_ref().ok_or("--driver is required")?;
        let (arch, _) = load_naming_unknown(driver)?;
        let label = if arguments.label.is_empty() { arch.name().to_owned() } else { arguments.label.clone() };
        wanlayer_emulator::machine::runs(arch).map_err(|why| format!("{}: {why}", driver.display()))?;
        // Loaded once up front: an import the model lacks fails here, by name.
        ImageFile::read(driver)?;
        let driver_text = driver.display().to_string();
        let mut failed = Vec::new();
        for probe in run::Probe::ALL {
            let (_, _, failure) = child(program, &["--driver", &driver_text, "--probe", probe.name()])?;
            let failure = failure.unwrap_or_default();
            if failure.contains(probe.expected()) {
                println!("emulator:   {label}: probe {}: caught as expected: {failure}", probe.name());
            } else {
                println!("emulator:   {label}: probe {}: NOT caught (expected {:?}): {failure}", probe.name(), probe.expected());
                failed.push((probe.name(), format!("the emulator's check is not live: {failure}")));
            }
        }
        let (mut deepest, mut calls) = (0usize, 0u64);
        for (index, scenario) in ALL.iter().enumerate() {
            let index = index.to_string();
            let (stack, import_calls, failure) = child(program, &["--driver", &driver_text, "--scenario", &index])?;
            deepest = deepest.max(stack);
            calls += import_calls.parse::<u64>().unwrap_or(0);
            println!("emulator:   {label}: {} (stack {stack} bytes){}", scenario.name, if failure.is_some() { ": FAILED" } else { "" });
            if let Some(failure) = failure {
                failed.push((scenario.name, failure));
            }
        }
        println!(
            "emulator: {label}: {} scenarios against {}, {} failed, {calls} import calls, max stack {:.1} KiB ({} probes of the emulator's checks)",
            ALL.len(),
            file_name(driver),
            failed.len(),
            deepest as f64 / 1024.0,
            run::Probe::ALL.len()
        );
        for (name, failure) in &failed {
            println!("emulator: FAILED {label}: {name}: {failure}");
        }
        let (allocations, failed_runs, sweep_failures) = sweeps(program, &driver_text)?;
        println!(
            "emulator: {label}: low-resources sweep: {} scenarios, {allocations} allocations counted, {failed_runs} failed in turn, {} not clean",
            SWEEP.len() * 2,
            sweep_failures.len()
        );
        for failure in &sweep_failures {
            println!("emulator: FAILED {label}: low-resources sweep: {failure}");
        }
        let every_scenario_clean = match arguments.sweep_every {
            Some(limit) => sweep_every_scenario(program, &driver_text, &label, limit)?,
            None => true,
        };
        let mut vendor_ok = true;
        if let Some(vendor) = &arguments.vendor {
            let (stack, status, failure) =
                child(program, &["--driver", &driver_text, "--vendor", &vendor.display().to_string(), "--vendor-entry"])?;
            let name = file_name(vendor);
            match failure {
                None => {
                    println!(
                        "emulator: {label}: {name} beside {}: DriverEntry registered through the provider table ({status}), its timer ran for 1 s of the model's clock, both unloaded, nothing left; max stack {stack} bytes",
                        file_name(driver)
                    )
                }
                Some(failure) => {
                    vendor_ok = false;
                    println!("emulator: FAILED {label}: {name}: DriverEntry: {failure}");
                }
            }
        }
        Ok(failed.is_empty() && sweep_failures.is_empty() && vendor_ok && every_scenario_clean)
    }

    /// The architecture of the image at `path`, loaded once, and the imports the model lacks.
    fn load_naming_unknown(path: &std::path::Path) -> Result<(Arch, Vec<String>), String> {
        let data = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let (image, unknown) = image::load_naming_unknown_imports(&file_name(path), &data)?;
        Ok((image.arch, unknown))
    }

    fn file_name(path: &std::path::Path) -> String {
        path.file_name().map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into_owned())
    }
}
