//! Running scenarios against an image file: a fresh machine and a fresh model per scenario.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use wanlayer_driver_host_tests::scenarios::{Scenario, Target};
use wanlayer_kernel_model::invoke::Word;

use crate::image::{self, Arch};
use crate::machine::Machine;

/// How one scenario ended.
#[derive(Debug)]
pub struct Outcome {
    /// The scenario's name.
    pub name: &'static str,
    /// Why it failed; `None` when it passed.
    pub failure: Option<String>,
    /// The deepest guest stack one call of it used, in bytes.
    pub stack: usize,
    /// The imports it called.
    pub import_calls: u64,
}

/// An image file read and checked: its name, bytes and architecture.
pub struct ImageFile {
    name: String,
    data: Vec<u8>,
    /// Its architecture.
    pub arch: Arch,
}

impl ImageFile {
    /// Reads and loads `path` once, to check it.
    ///
    /// # Errors
    /// An unreadable file, or what [`image::load`] refuses.
    pub fn read(path: &Path) -> Result<Self, String> {
        let data = std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        let name = path.file_name().map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into_owned());
        let arch = image::load(&name, &data)?.arch;
        Ok(Self { name, data, arch })
    }

    /// The image loaded afresh.
    ///
    /// # Errors
    /// What [`image::load`] refuses.
    pub fn load(&self) -> Result<image::Image, String> {
        image::load(&self.name, &self.data)
    }

    /// A fresh machine with the image loaded.
    ///
    /// # Errors
    /// What [`image::load`] or [`Machine::new`] refuses.
    pub fn machine(&self) -> Result<Machine, String> {
        Machine::new(vec![image::load(&self.name, &self.data)?])
    }
}

/// Runs `scenario` against a fresh load of `file`.
pub fn run(file: &ImageFile, scenario: &Scenario) -> Outcome {
    let machine = match file.machine() {
        Ok(machine) => machine,
        Err(failure) => return Outcome { name: scenario.name, failure: Some(failure), stack: 0, import_calls: 0 },
    };
    let target = Target { name: "emulated image", driver_entry: Word::from_word(machine.entry() as u64), links: None };
    let running = machine.run();
    let result = catch_unwind(AssertUnwindSafe(|| (scenario.run)(&target)));
    drop(running);
    let failure = result.err().map(|panic| match (panic.downcast_ref::<String>(), panic.downcast_ref::<&str>()) {
        (Some(text), _) => text.clone(),
        (None, Some(text)) => (*text).to_owned(),
        _ => "a panic".to_owned(),
    });
    Outcome { name: scenario.name, failure, stack: machine.deepest_stack(), import_calls: machine.import_calls() }
}

/// How a vendor image's `DriverEntry` (and its unload, when it loaded) ended.
#[derive(Debug)]
pub struct VendorOutcome {
    /// `DriverEntry`'s status.
    pub status: u32,
    /// Why the run failed: a fault, an import the model refused, a rule broken or something
    /// left at the end; `None` when clean.
    pub failure: Option<String>,
    /// The deepest guest stack a call used, in bytes.
    pub stack: usize,
}

/// A vendor driver (`wlclamp.sys`) beside the filter it registers with, both images on one
/// machine: wanlayer.sys's `DriverEntry`, the vendor's `DriverEntry` (which opens
/// `\Device\WanLayer` with `IoGetDeviceObjectPointer`, queries the provider table with an
/// internal device control and registers its filter through the table: calls from one image
/// into the other), a second of the model's clock (the vendor's periodic timer and its DPC), the
/// vendor's `DriverUnload`, wanlayer.sys's `DriverUnload`, and the model's end-of-run checks.
pub fn vendor_with_driver(driver: &ImageFile, vendor: &ImageFile) -> VendorOutcome {
    use wanlayer_driver_host_tests::common::zeroed;
    use wanlayer_kernel_model as model;
    use wanlayer_ndis::io::DriverObjectLayout;
    use wanlayer_ndis::kernel::DriverObject;
    use wanlayer_ndis::types::UnicodeString;

    let machine = match driver.load().and_then(|driver| Ok(vec![driver, vendor.load()?])).and_then(Machine::new) {
        Ok(machine) => machine,
        Err(failure) => return VendorOutcome { status: 0, failure: Some(failure), stack: 0 },
    };
    let entry = |index: usize| -> wanlayer_driver_host_tests::scenarios::DriverEntryFn { Word::from_word(machine.entry_of(index) as u64) };
    let _run = model::begin();
    let running = machine.run();
    let mut status = 0;
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut loaded = Vec::new();
        for (index, service) in ["wanlayer", "wlclamp"].into_iter().enumerate() {
            let driver_object = zeroed::<DriverObjectLayout>();
            let mut path: Vec<u16> =
                format!("\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\{service}").encode_utf16().collect();
            let bytes = u16::try_from(path.len() * 2).expect("short path");
            let mut registry_path = UnicodeString { length: bytes, maximum_length: bytes, buffer: path.as_mut_ptr() };
            // SAFETY: DriverEntry as the I/O manager calls it, once, with a zeroed driver object.
            status = unsafe {
                wanlayer_kernel_model::invoke::call(entry(index), (driver_object.ptr().cast::<DriverObject>(), &raw mut registry_path))
            } as u32;
            assert_eq!(status, 0, "{service}.sys DriverEntry: {:?}", model::log());
            loaded.push(driver_object);
        }
        assert_eq!(model::timers_set(), 1, "the vendor's periodic timer is set once it registered");
        // One second of the model's clock: the 10 ms timer's DPC runs 100 times, in the guest.
        model::advance_time(10_000_000);
        assert_eq!(model::timers_set(), 1, "a periodic timer stays set");
        for driver_object in loaded.iter().rev() {
            let unload = driver_object.driver_unload.expect("DriverEntry set DriverUnload");
            // SAFETY: the unload routine DriverEntry set, called once, the vendor first.
            unsafe { wanlayer_kernel_model::invoke::call(unload, (driver_object.ptr().cast::<DriverObject>(),)) };
        }
        let left = model::finish();
        assert!(left.is_empty(), "after both drivers unloaded: {left:?}");
    }));
    drop(running);
    let failure = result.err().map(|panic| match (panic.downcast_ref::<String>(), panic.downcast_ref::<&str>()) {
        (Some(text), _) => text.clone(),
        (None, Some(text)) => (*text).to_owned(),
        _ => "a panic".to_owned(),
    });
    VendorOutcome { status, failure, stack: machine.deepest_stack() }
}

/// The emulator's own checks proven live against an image, each expected to fail in its own way.
#[derive(Clone, Copy, Debug)]
pub enum Probe {
    /// `DriverEntry` given a driver object at an address that is not memory of this process:
    /// the guest's access must fault and fail the run with that address.
    WildPointer,
    /// `DriverEntry` with no `DriverUnload` after it: the model's end-of-run check must find the
    /// registration the guest made through its imports.
    NoUnload,
    /// `IOCTL_QUERY_VERSION` answered into a 16-byte pool block that claims 64 bytes of output:
    /// the driver's write past the block must hit the special pool's guard page.
    PoolOverrun,
    /// `IOCTL_QUERY_VERSION` answered into a pool block freed before the request: the driver's
    /// write must hit the freed block's inaccessible pages.
    UseAfterFree,
}

impl Probe {
    /// Every probe.
    pub const ALL: [Probe; 4] = [Probe::WildPointer, Probe::NoUnload, Probe::PoolOverrun, Probe::UseAfterFree];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Probe::WildPointer => "wild-pointer",
            Probe::NoUnload => "no-unload",
            Probe::PoolOverrun => "pool-overrun",
            Probe::UseAfterFree => "use-after-free",
        }
    }

    /// What its failure must say.
    pub fn expected(self) -> &'static str {
        match self {
            Probe::WildPointer => "not memory of this process",
            Probe::NoUnload => "the filter driver is still registered",
            Probe::PoolOverrun => "the guard page after the pool block of 16 bytes",
            Probe::UseAfterFree => "freed (a use after free)",
        }
    }

    /// Runs it against a fresh load of `file`; returns its failure (a fault ends the process
    /// with a panic, which the caller's child process reports).
    pub fn run(self, file: &ImageFile) -> Option<String> {
        use wanlayer_driver_host_tests::common::zeroed;
        use wanlayer_kernel_model as model;
        use wanlayer_ndis::io::DriverObjectLayout;
        use wanlayer_ndis::kernel::DriverObject;
        use wanlayer_ndis::types::UnicodeString;

        let machine = match file.machine() {
            Ok(machine) => machine,
            Err(failure) => return Some(failure),
        };
        let entry: wanlayer_driver_host_tests::scenarios::DriverEntryFn = Word::from_word(machine.entry() as u64);
        let _run = model::begin();
        let _running = machine.run();
        if let Probe::PoolOverrun | Probe::UseAfterFree = self {
            let tag = u64::from(u32::from_le_bytes(*b"WLpr"));
            let size = if let Probe::PoolOverrun = self { 16 } else { 64 };
            let allocate = model::exports::find("ntoskrnl.exe", "ExAllocatePool2").expect("exported");
            // SAFETY: ExAllocatePool2(POOL_FLAG_NON_PAGED, size, 'WLpr') through the model, as the
            // I/O manager would allocate a system buffer.
            let buffer = unsafe { allocate.call_words(&[0x40, size, tag]) };
            if let Probe::UseAfterFree = self {
                let free = model::exports::find("ntoskrnl.exe", "ExFreePoolWithTag").expect("exported");
                // SAFETY: the block allocated above, freed once with its tag.
                unsafe { free.call_words(&[buffer, tag]) };
            }
            let target = Target { name: "emulated image", driver_entry: entry, links: None };
            let status = wanlayer_driver_host_tests::scenarios::control::query_version_into(&target, Word::from_word(buffer), 64);
            return Some(format!("the version query into the {size}-byte block returned {status:#x} without a fault"));
        }
        let driver_object = zeroed::<DriverObjectLayout>();
        let object = match self {
            Probe::WildPointer => std::ptr::without_provenance_mut::<DriverObject>(0x1000),
            Probe::NoUnload | Probe::PoolOverrun | Probe::UseAfterFree => driver_object.ptr().cast::<DriverObject>(),
        };
        let mut path: Vec<u16> = "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\wanlayer".encode_utf16().collect();
        let bytes = u16::try_from(path.len() * 2).expect("short path");
        let mut registry_path = UnicodeString { length: bytes, maximum_length: bytes, buffer: path.as_mut_ptr() };
        // SAFETY: DriverEntry as the I/O manager calls it (with a wild driver object for the first
        // probe: the emulator stops the guest at its first access).
        let status = unsafe { wanlayer_kernel_model::invoke::call(entry, (object, &raw mut registry_path)) };
        let left = model::finish();
        Some(format!("DriverEntry returned {status:#x}; left: {}", left.join("; ")))
    }
}

/// The tag of the line a sweep prints before each of its runs (to stderr), so that the run a
/// process ended in is known.
pub const SWEEP_RUN: &str = "emulator-sweep-run";

/// The low-resources sweep of scenario `index` of
/// [`SWEEP`](wanlayer_driver_host_tests::scenarios::low_resources::SWEEP) (with and without
/// `ExAllocatePool2`: `pool2`) against `file`: one run counts the allocations the image asks the
/// kernel for (pool — which also holds the image's Rust heap —, NBL pools, NBLs, MDLs, clones),
/// then each is failed in a run of its own, each on a fresh load of the image. A run that ends
/// other than cleanly with its documented status ends the process (the model's functions cannot
/// unwind), so a returned sweep has no defect; the caller's child process reports the one that
/// ended it, after the last [`SWEEP_RUN`] line.
pub fn sweep(file: &ImageFile, index: usize, pool2: bool) -> Result<wanlayer_kernel_model::low_resources::Sweep, String> {
    use wanlayer_driver_host_tests::scenarios::low_resources::SWEEP;
    let (_, scenario) = SWEEP.get(index).ok_or_else(|| format!("no sweep scenario {index}"))?;
    let mut failure = None;
    let sweep = wanlayer_kernel_model::low_resources::sweep(|fail_at| {
        eprintln!("{SWEEP_RUN}\t{fail_at:?}");
        match file.machine() {
            Ok(machine) => {
                let _running = machine.run();
                let target = Target { name: "emulated image", driver_entry: Word::from_word(machine.entry() as u64), links: None };
                scenario(&target, fail_at, pool2);
            }
            Err(error) => failure = Some(error),
        }
    });
    match failure {
        Some(error) => Err(error),
        None => Ok(sweep),
    }
}

/// One run of the low-resources sweep of scenario `index` of
/// [`ALL`](wanlayer_driver_host_tests::scenarios::ALL) against a fresh load of `file`, failing
/// allocation `fail_at` (`None`: counting; the image's Rust heap is pool too). The driver workspace
/// builds with `panic = "abort"`, so a run whose check fails does not return: the child's panic
/// hook tears it down ([`low_resources::tear_down_after_panic`](wanlayer_kernel_model::low_resources::tear_down_after_panic))
/// and judges it before the process ends; the caller resumes the sweep in a new process.
///
/// # Errors
/// What loading the image refuses.
pub fn sweep_run(file: &ImageFile, index: usize, fail_at: Option<u64>) -> Result<wanlayer_kernel_model::low_resources::RunRecord, String> {
    use wanlayer_driver_host_tests::scenarios::{self, ALL};
    use wanlayer_kernel_model::low_resources;
    let scenario = ALL.get(index).ok_or_else(|| format!("no scenario {index}"))?;
    let machine = file.machine()?;
    let _running = machine.run();
    let target = Target { name: "emulated image", driver_entry: Word::from_word(machine.entry() as u64), links: None };
    low_resources::set_teardown(Some(scenarios::tear_down));
    low_resources::name_routine(target.driver_entry as usize, "DriverEntry");
    low_resources::plan_every_run(fail_at);
    wanlayer_driver_host_tests::common::take_open_handles();
    eprintln!("{SWEEP_RUN}\t{fail_at:?}");
    (scenario.run)(&target);
    low_resources::plan_every_run(None);
    Ok(low_resources::last_run())
}
