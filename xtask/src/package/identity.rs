//! Who the filter is: the names that must agree between `wanlayer.sys` (its
//! `NDIS_FILTER_DRIVER_CHARACTERISTICS`), its INF and the install scripts.

use super::lint::is_guid;

/// The filter's identity. `filter_guid` is the INF's `NetCfgInstanceId` and the driver's
/// `UniqueName`; `service_name` is the `AddService` name and the driver's `ServiceName` (and the
/// stem of the package's file names); `component_id` is what `netcfg -i` installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The NetCfg component ID (hardware ID of the models section), e.g. `wl_wanlayer`.
    pub component_id: String,
    /// The driver service name, e.g. `wanlayer`.
    pub service_name: String,
    /// `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}`: `NetCfgInstanceId` = `UniqueName`.
    pub filter_guid: String,
    /// The filter's display name (the driver's `FriendlyName`).
    pub friendly_name: String,
    /// The `Ndi\HelpText` shown for the component.
    pub help_text: String,
    /// The INF's `Provider` and manufacturer.
    pub provider: String,
}

/// The identity `cargo xtask package` stamps into the INF and the scripts: the driver's own
/// constants (`driver/src/identity.rs`, read by [`crate::build::driver_identity`]), so the INF's
/// `NetCfgInstanceId` is always the `UniqueName` the driver registers.
///
/// # Errors
///
/// When the identity file cannot be read or lacks a constant.
pub fn driver_identity() -> Result<Identity, String> {
    let driver = crate::build::driver_identity()?;
    Ok(Identity {
        component_id: driver.component_id,
        service_name: driver.service_name,
        filter_guid: driver.filter_guid,
        friendly_name: driver.friendly_name,
        help_text: driver.help_text,
        provider: driver.provider,
    })
}

impl Identity {
    /// The driver file, `<service>.sys`.
    pub fn driver_file(&self) -> String {
        format!("{}.sys", self.service_name)
    }

    /// The INF file, `<service>.inf`.
    pub fn inf_file(&self) -> String {
        format!("{}.inf", self.service_name)
    }

    /// The catalog file, `<service>.cat`.
    pub fn catalog_file(&self) -> String {
        format!("{}.cat", self.service_name)
    }

    /// Checks that every value can be written into an INF and a PowerShell script as is (ASCII:
    /// see [`super::stamp`]).
    ///
    /// # Errors
    ///
    /// Naming the first field that cannot.
    pub fn validate(&self) -> Result<(), String> {
        let name_like = |text: &str, extra: &str| {
            !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
        };
        if !name_like(&self.component_id, "_-&\\") || self.component_id.len() > 200 {
            return Err(format!("component ID '{}': letters, digits, _ - & \\ only", self.component_id));
        }
        if !name_like(&self.service_name, "_-") || self.service_name.len() > 64 {
            return Err(format!("service name '{}': letters, digits, _ - only", self.service_name));
        }
        if !is_guid(&self.filter_guid) {
            return Err(format!("filter GUID '{}' is not {{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}}", self.filter_guid));
        }
        for (field, text) in
            [("friendly name", &self.friendly_name), ("help text", &self.help_text), ("provider", &self.provider)]
        {
            if text.trim().is_empty() || text.chars().any(|c| !c.is_ascii() || c.is_control() || "\"%'`$@".contains(c))
            {
                return Err(format!("{field} '{text}': printable ASCII without quotes, % $ @ or `"));
            }
        }
        Ok(())
    }
}
