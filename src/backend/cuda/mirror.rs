//! The device half of a blob's storage and its head protocol (Caffe's
//! SyncedMemory). The device buffer is still host memory standing in for
//! device memory until layers run on the GPU; the protocol is exercised by
//! `cargo test --features cuda`.

/// Where the newest values of one array (a blob's data or diff) are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Head {
    /// Only the host copy is current (or nothing was ever written: all zero).
    #[default]
    Host,
    /// Only the device copy is current.
    Device,
    /// Both copies hold the same values.
    Synced,
}

/// The device copy of one array and its head.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mirror {
    head: Head,
    device: Vec<f32>,
}

impl Mirror {
    pub fn head(&self) -> Head {
        self.head
    }

    /// Before reading on the host: copies device values down when only they are current.
    pub fn to_host(&mut self, host: &mut [f32]) {
        if self.head == Head::Device {
            host.copy_from_slice(&self.device);
            self.head = Head::Synced;
        }
    }

    /// Before reading on the device: copies host values up when only they are current.
    pub fn to_device(&mut self, host: &[f32]) -> &[f32] {
        if self.head == Head::Host {
            self.device.clear();
            self.device.extend_from_slice(host);
            self.head = Head::Synced;
        }
        &self.device
    }

    /// The device values for writing (synced up first); the host copy becomes stale.
    pub fn device_mut(&mut self, host: &[f32]) -> &mut [f32] {
        self.to_device(host);
        self.head = Head::Device;
        &mut self.device
    }

    /// The host copy was written: the device copy is stale.
    pub fn host_written(&mut self) {
        self.head = Head::Host;
    }
}
