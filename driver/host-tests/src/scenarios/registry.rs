//! The rule set's persistence in the loop: `DriverEntry` reads `<RegistryPath>\Parameters`
//! (`Rules`, `RulesAltitude`) from the kernel model's registry, `SET_RULES` through the control
//! device writes them, a reload puts the saved set back in force, and a corrupt saved set is
//! refused (logged) with the driver starting without rules; every key handle is closed.

use super::Target;
use std::ffi::c_void;

use crate::common::{zeroed, Owned};

use wanlayer_kernel_model::invoke;
use wanlayer_kernel_model::{self as model, Event};
use wanlayer_ndis::io::{DriverObjectLayout, FileObjectLayout, IoSecurityContext, IoStackLocation, IrpLayout};
use wanlayer_ndis::kernel::{
    DriverObject, Irp, NtStatus, FILE_READ_DATA, FILE_WRITE_DATA, IRP_MJ_CLEANUP, IRP_MJ_CLOSE, IRP_MJ_CREATE, IRP_MJ_DEVICE_CONTROL,
};
use wanlayer_ndis::registry::{REG_BINARY, REG_DWORD};
use wanlayer_ndis::types::UnicodeString;
use wanlayer_proto::ioctl::{IOCTL_GET_RULES, IOCTL_SET_RULES};
use wanlayer_proto::{Expected, HeaderOnly, RulesInfo, RulesInfoRepr, RulesSet, RulesSetRepr, RulesVersion, RulesVersionRepr};
use wanlayer_rules::{compile, Action, RuleSource};

/// The service key the I/O manager passes to `DriverEntry`.
const SERVICE: &str = "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Services\\wanlayer";
/// Where the driver keeps the set (written here in another case: key names compare
/// case-insensitively).
const PARAMETERS: &str = "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\wanlayer\\Parameters";
const ALTITUDE: u32 = 1000;

/// An IRP with its one stack location, security context and system buffer.
struct Request {
    irp: Owned<IrpLayout>,
    location: Owned<IoStackLocation>,
    _security: Owned<IoSecurityContext>,
    buffer: Vec<u8>,
}

impl Request {
    fn new(major: usize, file: *mut FileObjectLayout) -> Self {
        let mut location = zeroed::<IoStackLocation>();
        location.major_function = u8::try_from(major).expect("major function");
        location.file_object = file.cast();
        let mut irp = zeroed::<IrpLayout>();
        irp.current_stack_location = location.ptr();
        irp.stack_count = 1;
        irp.current_location = 1;
        Request { irp, location, _security: zeroed(), buffer: Vec::new() }
    }

    fn device_control(file: *mut FileObjectLayout, code: u32, input: &[u8], output_len: usize) -> Self {
        let mut request = Self::new(IRP_MJ_DEVICE_CONTROL, file);
        request.buffer = vec![0; input.len().max(output_len)];
        request.buffer[..input.len()].copy_from_slice(input);
        request.irp.system_buffer = request.buffer.as_mut_ptr().cast::<c_void>();
        // SAFETY: `device_io_control` is the union member of IRP_MJ_DEVICE_CONTROL; the stack
        // location was zeroed, a valid value of it.
        let parameters = unsafe { &mut request.location.parameters.device_io_control };
        parameters.io_control_code = code;
        parameters.input_buffer_length = u32::try_from(input.len()).expect("short input");
        parameters.output_buffer_length = u32::try_from(output_len).expect("short output");
        request
    }

    /// Sends the IRP to the control device's dispatch routine, as the I/O manager does; its
    /// completion as (status, information).
    fn send(&mut self, major: usize) -> (NtStatus, usize) {
        let device = model::control_device().expect("the control device");
        let dispatch = device.dispatch[major].expect("a dispatch routine");
        let irp = self.irp.ptr();
        // SAFETY: an IRP for the driver's device, built in the I/O manager's layout, at
        // PASSIVE_LEVEL, not completed yet.
        let status = unsafe { invoke::call(dispatch, (device.device, irp.cast::<Irp>())) };
        // SAFETY: this request's IRP, of one stack location.
        unsafe { crate::common::note_handle(irp, status) };
        let completion = model::take_events().into_iter().find_map(|event| match event {
            Event::IrpCompleted { irp: completed, status, information } if completed == irp.addr() => Some((status, information)),
            _ => None,
        });
        assert_eq!(completion.map(|(completed, _)| completed), Some(status), "completed with its status");
        completion.expect("completed")
    }
}

/// Opens a read-write handle to the control device.
fn open() -> Owned<FileObjectLayout> {
    let file = zeroed::<FileObjectLayout>();
    let mut create = Request::new(IRP_MJ_CREATE, file.ptr());
    create._security.desired_access = FILE_READ_DATA | FILE_WRITE_DATA;
    create.location.parameters.create.security_context = create._security.ptr();
    assert_eq!(create.send(IRP_MJ_CREATE).0, 0);
    file
}

fn close(file: &Owned<FileObjectLayout>) {
    assert_eq!(Request::new(IRP_MJ_CLEANUP, file.ptr()).send(IRP_MJ_CLEANUP).0, 0);
    assert_eq!(Request::new(IRP_MJ_CLOSE, file.ptr()).send(IRP_MJ_CLOSE).0, 0);
}

/// `DriverEntry` with the service key, as the I/O manager calls it.
fn load(target: &Target) -> Owned<DriverObjectLayout> {
    let driver_object = zeroed::<DriverObjectLayout>();
    let mut path: Vec<u16> = SERVICE.encode_utf16().collect();
    let bytes = u16::try_from(path.len() * 2).expect("short path");
    let mut registry_path = UnicodeString { length: bytes, maximum_length: bytes, buffer: path.as_mut_ptr() };
    // SAFETY: DriverEntry with a zeroed driver object and the service key, once per load.
    let status = unsafe { invoke::call(target.driver_entry, (driver_object.ptr().cast::<DriverObject>(), &mut registry_path)) };
    assert_eq!(status, 0, "{:?}", model::log());
    assert_eq!(model::open_key_handles(), 0, "DriverEntry closes every key it opened");
    driver_object
}

fn unload(driver_object: Owned<DriverObjectLayout>) {
    let unload = driver_object.driver_unload.expect("DriverUnload");
    // SAFETY: the unload routine DriverEntry set, called once after every handle closed.
    unsafe { invoke::call(unload, (driver_object.ptr().cast(),)) };
    let left = model::finish();
    assert!(left.is_empty(), "after unload: {left:#?}\nlog: {:#?}", model::log());
}

/// `GET_RULES`: (altitude, rules, blob) of the set in force.
fn rules_in_force(file: &Owned<FileObjectLayout>) -> (u32, u32, Vec<u8>) {
    let mut input = [0u8; HeaderOnly::LEN];
    HeaderOnly.emit(&mut input).expect("header");
    let mut request = Request::device_control(file.ptr(), IOCTL_GET_RULES, &input, 4096);
    let (status, written) = request.send(IRP_MJ_DEVICE_CONTROL);
    assert_eq!(status, 0, "{:?}", model::log());
    let info = RulesInfoRepr::parse(&RulesInfo::new_unchecked(&request.buffer[..written])).expect("a RulesInfo");
    (info.altitude, info.rules, info.blob.expect("the blob fits").to_vec())
}

fn compiled() -> Vec<u8> {
    compile(&[
        RuleSource { id: 7, priority: 1, action: Action::Count, filter: "ip or ip6" },
        RuleSource { id: 9, priority: 2, action: Action::Count, filter: "tcp port 443" },
    ])
    .expect("the set compiles")
}

/// A scenario (see the module doc).
pub fn a_set_rules_is_saved_and_in_force_again_after_a_reload(target: &Target) {
    let _run = model::begin();
    model::create_key(SERVICE);

    let driver_object = load(target);
    let file = open();
    assert_eq!(rules_in_force(&file), (0, 0, Vec::new()), "nothing saved: no rules");
    assert_eq!(model::registry_value(PARAMETERS, "Rules"), None, "loading writes nothing");

    let blob = compiled();
    let request = RulesSetRepr { expected: Expected::Any, altitude: ALTITUDE, blob: &blob };
    let mut input = vec![0u8; request.buffer_len()];
    request.emit(&mut RulesSet::new_unchecked(&mut input[..])).expect("SET_RULES request");
    let mut set = Request::device_control(file.ptr(), IOCTL_SET_RULES, &input, RulesVersion::<&[u8]>::LEN);
    let (status, written) = set.send(IRP_MJ_DEVICE_CONTROL);
    assert_eq!(status, 0, "{:?}", model::log());
    assert_eq!(RulesVersionRepr::parse(&RulesVersion::new_unchecked(&set.buffer[..written])).expect("version").version, 1);
    assert_eq!(model::registry_value(PARAMETERS, "RULES"), Some((REG_BINARY, blob.clone())));
    assert_eq!(model::registry_value(PARAMETERS, "rulesaltitude"), Some((REG_DWORD, ALTITUDE.to_le_bytes().to_vec())));
    assert_eq!(model::open_key_handles(), 0, "SET_RULES closes the key it wrote");
    close(&file);
    unload(driver_object);

    let driver_object = load(target);
    let file = open();
    assert_eq!(rules_in_force(&file), (ALTITUDE, 2, blob), "the saved set is in force again");
    close(&file);
    unload(driver_object);
}

/// A scenario (see the module doc).
pub fn a_corrupt_saved_set_is_refused_and_the_driver_starts_without_rules(target: &Target) {
    let _run = model::begin();
    model::set_registry_value(PARAMETERS, "Rules", REG_BINARY, b"not a compiled rule set");
    model::set_registry_value(PARAMETERS, "RulesAltitude", REG_DWORD, &ALTITUDE.to_le_bytes());

    let driver_object = load(target);
    assert!(model::log().iter().any(|line| line.contains("the saved rule set was refused")), "the refusal is logged: {:#?}", model::log());
    let file = open();
    assert_eq!(rules_in_force(&file), (0, 0, Vec::new()), "no rules in force");
    close(&file);
    assert_eq!(
        model::registry_value(PARAMETERS, "Rules").map(|(_, bytes)| bytes),
        Some(b"not a compiled rule set".to_vec()),
        "left as found"
    );
    unload(driver_object);
}
