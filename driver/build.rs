//! Only the windows-drivers-rs flow (`--features wdk`, Windows host with the WDK) configures the
//! link here; `cargo xtask build` passes its linker arguments on the command line instead.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "wdk")]
    wdk_build::configure_wdk_binary_build()?;
    Ok(())
}
