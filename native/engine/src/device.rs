//! Device selection (CPU by default, CUDA behind the `cuda` feature) and the
//! memory figures the registry reports.

use candle_core::Device;
use serde::Serialize;

/// Which device a model should run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevicePreference {
    /// CUDA when compiled in and present, else CPU.
    #[default]
    Auto,
    Cpu,
    /// CUDA device by ordinal; an error when CUDA is not available.
    Cuda(usize),
}

impl DevicePreference {
    /// Parses "auto", "cpu", "cuda" or "cuda:N".
    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "auto" | "" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| crate::EngineError::invalid(format!("unknown device '{other}' (auto, cpu, cuda, cuda:N)"))),
        }
    }
}

/// Resolves a preference to a candle device.
pub fn select(pref: DevicePreference) -> crate::Result<Device> {
    match pref {
        DevicePreference::Cpu => Ok(Device::Cpu),
        DevicePreference::Auto => {
            if cuda_available() {
                Ok(Device::new_cuda(0)?)
            } else {
                Ok(Device::Cpu)
            }
        }
        DevicePreference::Cuda(n) => {
            if !cfg!(feature = "cuda") {
                return Err(crate::EngineError::invalid("this build has no CUDA support (cargo feature `cuda`)"));
            }
            Ok(Device::new_cuda(n)?)
        }
    }
}

/// True when the build has CUDA and a device is present.
pub fn cuda_available() -> bool {
    cfg!(feature = "cuda") && candle_core::utils::cuda_is_available()
}

/// A short, stable name for a device ("cpu", "cuda:0").
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_string(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Memory figures for the device the engine uses and for this process.
#[derive(Debug, Clone, Serialize, Default)]
pub struct MemoryInfo {
    pub device: String,
    /// Resident set size of the whole process, bytes.
    pub process_rss_bytes: u64,
    /// Device memory in use and total, bytes (None on CPU).
    pub device_used_bytes: Option<u64>,
    pub device_total_bytes: Option<u64>,
    /// CPU features the kernels were compiled for.
    pub cpu_features: Vec<&'static str>,
}

/// Collects [`MemoryInfo`] now.
pub fn memory_info() -> MemoryInfo {
    let mut features = Vec::new();
    if cfg!(target_feature = "avx2") {
        features.push("avx2");
    }
    if cfg!(target_feature = "fma") {
        features.push("fma");
    }
    if cfg!(target_feature = "f16c") {
        features.push("f16c");
    }
    let (used, total) = cuda_memory();
    MemoryInfo {
        device: if cuda_available() { "cuda:0".into() } else { "cpu".into() },
        process_rss_bytes: process_rss_bytes(),
        device_used_bytes: used,
        device_total_bytes: total,
        cpu_features: features,
    }
}

#[cfg(feature = "cuda")]
fn cuda_memory() -> (Option<u64>, Option<u64>) {
    use candle_core::cuda_backend::cudarc::driver::result;
    if !cuda_available() {
        return (None, None);
    }
    // A device must be current for the query; creating it also initialises the context.
    if Device::new_cuda(0).is_err() {
        return (None, None);
    }
    match result::mem_get_info() {
        Ok((free, total)) => (Some((total - free) as u64), Some(total as u64)),
        Err(_) => (None, None),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda_memory() -> (Option<u64>, Option<u64>) {
    (None, None)
}

/// Resident set size from /proc (0 where /proc is absent).
pub fn process_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}
