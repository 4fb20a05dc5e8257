//! `virtio_drivers::Hal` and PCI configuration access, implemented with the nucleus's device
//! API (`server_rt::Kernel`), plus [`DmaBuffer`], an owned DMA region. Everything is checked by
//! the nucleus against the calling server; a refusal here means the server asked for something
//! that is not its own, which is a bug in the server: it panics (and so dies and restarts).

use core::ptr::NonNull;
use server_rt::{kernel, DeviceRef, DmaRegion, IpcError};
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// The `Hal` of every Cairn driver server.
pub struct CairnHal;

// SAFETY: `dma_alloc` returns zeroed, page-aligned, physically contiguous memory that the
// nucleus allocated to this server alone (reached through the direct map, so the pointer is
// valid and unaliased until `dma_dealloc`); `mmio_phys_to_virt` returns the nucleus's permanent
// uncached mapping of a register window of a device this server opened; `share` returns the
// physical address of a buffer only if it lies wholly inside this server's DMA memory (the
// nucleus checks), which the device can reach without an IOMMU; there is nothing to copy back
// in `unshare`.
unsafe impl Hal for CairnHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        match kernel().dma_alloc(pages) {
            // `Dma::new` treats a physical address of 0 as failure (frame 0 is never handed out).
            Ok(r) => (r.paddr, NonNull::new(r.vaddr as *mut u8).unwrap_or(NonNull::dangling())),
            Err(_) => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        kernel().dma_free(paddr).map_or(-1, |_| 0)
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        match kernel().device_mmio(paddr, size as u64) {
            Ok(va) => NonNull::new(va as *mut u8).unwrap_or_else(|| panic!("virtio: null register window")),
            Err(e) => panic!("virtio: registers at {paddr:#x}+{size:#x} are not this server's: {e}"),
        }
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        let (va, len) = (buffer.as_ptr() as *mut u8 as u64, buffer.len() as u64);
        match kernel().dma_phys(va, len) {
            Ok(pa) => pa,
            Err(e) => panic!("virtio: buffer {va:#x}+{len:#x} is not DMA memory: {e}"),
        }
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// PCI configuration space of one device this server opened, through the nucleus (which
/// refuses other functions' registers and moving a BAR).
#[derive(Clone, Copy, Debug)]
pub struct KernelCam {
    pub dev: DeviceRef,
    pub function: DeviceFunction,
}

impl ConfigurationAccess for KernelCam {
    fn read_word(&self, f: DeviceFunction, offset: u8) -> u32 {
        if f != self.function {
            return u32::MAX;
        }
        kernel().pci_config_read(self.dev, offset as u16).unwrap_or(u32::MAX)
    }

    fn write_word(&mut self, f: DeviceFunction, offset: u8, data: u32) {
        if f == self.function {
            let _ = kernel().pci_config_write(self.dev, offset as u16, data);
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        *self
    }
}

/// A DMA region owned by this server, freed when dropped (or by the nucleus when the server
/// dies).
#[derive(Debug)]
pub struct DmaBuffer {
    region: DmaRegion,
}

impl DmaBuffer {
    /// `bytes` (rounded up to pages) of zeroed DMA memory.
    pub fn new(bytes: usize) -> Result<DmaBuffer, IpcError> {
        let region = kernel().dma_alloc(bytes.div_ceil(PAGE_SIZE))?;
        Ok(DmaBuffer { region })
    }

    pub fn len(&self) -> usize {
        self.region.pages * PAGE_SIZE
    }

    pub fn is_empty(&self) -> bool {
        self.region.pages == 0
    }

    /// The start of the region (through the direct map).
    pub(crate) fn base(&self) -> *mut u8 {
        self.region.vaddr as *mut u8
    }
}

impl Drop for DmaBuffer {
    fn drop(&mut self) {
        let _ = kernel().dma_free(self.region.paddr);
    }
}
