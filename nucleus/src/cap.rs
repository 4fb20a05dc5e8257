//! Capability tables. Each task has a fixed table of slots; a slot holds a capability to an
//! endpoint together with the endpoint generation it was issued for. A [`CapRef`] names a slot
//! and the slot's own generation (bumped whenever the slot is emptied), so a reference to a
//! deleted capability can never reach whatever takes the slot next. An endpoint capability
//! whose endpoint generation is behind the endpoint's current one is stale: its server died.

use ipc::{CapRef, IpcError};

pub const MAX_CAPS: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointCap {
    pub endpoint: usize,
    pub generation: u32,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    generation: u32,
    cap: Option<EndpointCap>,
}

pub struct CapTable {
    slots: [Slot; MAX_CAPS],
}

impl CapTable {
    pub const fn new() -> Self {
        CapTable { slots: [Slot { generation: 1, cap: None }; MAX_CAPS] }
    }

    /// The capability `r` names, if the task holds it.
    pub fn resolve(&self, r: CapRef) -> Result<EndpointCap, IpcError> {
        let slot = self.slots.get(r.slot as usize).ok_or(IpcError::NoSuchCap)?;
        if slot.generation != r.generation {
            return Err(IpcError::StaleGeneration);
        }
        slot.cap.ok_or(IpcError::NoSuchCap)
    }

    /// Grants a capability to `cap.endpoint`, refreshing the slot that already names that
    /// endpoint (so repeated look-ups after restarts never exhaust the table).
    pub fn grant(&mut self, cap: EndpointCap) -> Result<CapRef, IpcError> {
        let index = self
            .slots
            .iter()
            .position(|s| s.cap.is_some_and(|c| c.endpoint == cap.endpoint))
            .or_else(|| self.slots.iter().position(|s| s.cap.is_none()))
            .ok_or(IpcError::NoSlots)?;
        self.slots[index].cap = Some(cap);
        Ok(CapRef { slot: index as u32, generation: self.slots[index].generation })
    }

    /// Deletes a capability; the slot's generation moves on.
    pub fn revoke(&mut self, r: CapRef) -> Result<(), IpcError> {
        self.resolve(r)?;
        let slot = &mut self.slots[r.slot as usize];
        slot.cap = None;
        slot.generation = slot.generation.wrapping_add(1).max(1);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.cap.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for CapTable {
    fn default() -> Self {
        Self::new()
    }
}
