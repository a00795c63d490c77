//! Writes the seed corpora: `cargo run --manifest-path fuzz/Cargo.toml --example seed -- <fuzz dir> [image.sys]`
//! (what `cargo xtask fuzz --seed` runs). Each seed is run through its target first.

use std::path::PathBuf;

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let fuzz_dir = PathBuf::from(args.next().ok_or("usage: seed <fuzz dir> [image.sys]")?);
    let image = args.next().map(|path| std::fs::read(&path).map_err(|error| format!("{path}: {error}"))).transpose()?;
    let template_path = fuzz_dir.join("../inf/wanlayer.inx");
    let template = std::fs::read(&template_path).map_err(|error| format!("{}: {error}", template_path.display()))?;
    let seeds = wanlayer_fuzz::seeds::all(&template, image.as_deref());
    // A target without new seeds (verify_image without an image) keeps the ones it has.
    for target in wanlayer_fuzz::TARGETS.iter().filter(|target| seeds.iter().any(|(of, _, _)| of == *target)) {
        let dir = fuzz_dir.join("corpus").join(target);
        std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        for entry in std::fs::read_dir(&dir).map_err(|error| error.to_string())? {
            let path = entry.map_err(|error| error.to_string())?.path();
            if path.file_name().and_then(|name| name.to_str()).is_some_and(|name| name.starts_with("seed-")) {
                std::fs::remove_file(&path).map_err(|error| format!("{}: {error}", path.display()))?;
            }
        }
    }
    for (target, name, bytes) in &seeds {
        wanlayer_fuzz::seeds::run(target, bytes);
        let path = fuzz_dir.join("corpus").join(target).join(format!("seed-{name}"));
        std::fs::write(&path, bytes).map_err(|error| format!("{}: {error}", path.display()))?;
    }
    println!("seed: {} seeds written under {}", seeds.len(), fuzz_dir.join("corpus").display());
    Ok(())
}
