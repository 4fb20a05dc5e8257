//! At-most-once execution across restarts: the answers a *transparent* server recorded for the
//! last requests it applied, by request id (`Sqe::rid`). A server commits the record in the
//! same state-area commit as the effect of the request, so after a death between that commit
//! and the reply, the client's retry (same rid) is answered from the record instead of being
//! applied again. The record is plain bytes: [`Replies::encode`] goes into the state area,
//! [`Replies::decode`] brings it back in the next instance.

/// One recorded answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub rid: u64,
    pub result: i64,
    pub aux: u64,
}

/// The encoded form of one entry.
fn entry_bytes(e: &Reply) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[..8].copy_from_slice(&e.rid.to_le_bytes());
    b[8..16].copy_from_slice(&e.result.to_le_bytes());
    b[16..].copy_from_slice(&e.aux.to_le_bytes());
    b
}

/// The last `N` answers, oldest overwritten first.
#[derive(Clone, Copy, Debug)]
pub struct Replies<const N: usize> {
    entries: [Reply; N],
    next: usize,
}

impl<const N: usize> Default for Replies<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Replies<N> {
    /// Bytes of the encoded form.
    pub const BYTES: usize = 8 + N * 24;

    pub const fn new() -> Self {
        Replies { entries: [Reply { rid: 0, result: 0, aux: 0 }; N], next: 0 }
    }

    /// The recorded answer to `rid`, if it was applied (rid 0 is never recorded).
    pub fn find(&self, rid: u64) -> Option<Reply> {
        if rid == 0 {
            return None;
        }
        self.entries.iter().find(|e| e.rid == rid).copied()
    }

    /// Records the answer to `rid` (nothing for rid 0).
    pub fn record(&mut self, rid: u64, result: i64, aux: u64) {
        if rid == 0 || N == 0 {
            return;
        }
        self.entries[self.next] = Reply { rid, result, aux };
        self.next = (self.next + 1) % N;
    }

    /// What [`record`](Self::record)`(rid, result, aux)` would change in the encoded form,
    /// without recording it: a server commits these first and records once the commit took
    /// (nothing to undo, no copy of the whole ring).
    pub fn change_for(&self, rid: u64, result: i64, aux: u64) -> [(usize, [u8; 24]); 2] {
        let mut head = [0u8; 24];
        head[..8].copy_from_slice(&(((self.next + 1) % N.max(1)) as u64).to_le_bytes());
        [(0, head), (8 + self.next * 24, entry_bytes(&Reply { rid, result, aux }))]
    }

    /// What the last [`record`](Self::record) changed in the encoded form, as (offset, bytes)
    /// pairs: the ring position and the one entry. A server can commit just these instead of
    /// the whole encoding.
    pub fn last_change(&self) -> [(usize, [u8; 24]); 2] {
        let mut head = [0u8; 24];
        head[..8].copy_from_slice(&(self.next as u64).to_le_bytes());
        let i = (self.next + N - 1) % N.max(1);
        let entry = self.entries.get(i).map_or([0u8; 24], entry_bytes);
        [(0, head), (8 + i * 24, entry)]
    }

    pub fn encode(&self, out: &mut [u8]) {
        if out.len() < Self::BYTES {
            return;
        }
        out[..8].copy_from_slice(&(self.next as u64).to_le_bytes());
        for (i, e) in self.entries.iter().enumerate() {
            let at = 8 + i * 24;
            out[at..at + 8].copy_from_slice(&e.rid.to_le_bytes());
            out[at + 8..at + 16].copy_from_slice(&e.result.to_le_bytes());
            out[at + 16..at + 24].copy_from_slice(&e.aux.to_le_bytes());
        }
    }

    /// The record encoded in `bytes` (all zeros, or too short: an empty record).
    pub fn decode(bytes: &[u8]) -> Self {
        let mut r = Self::new();
        if bytes.len() < Self::BYTES || N == 0 {
            return r;
        }
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        r.next = word(0) as usize % N;
        for (i, e) in r.entries.iter_mut().enumerate() {
            let at = 8 + i * 24;
            *e = Reply { rid: word(at), result: word(at + 8) as i64, aux: word(at + 16) };
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_age_out() {
        let mut r = Replies::<3>::new();
        assert_eq!(r.find(0), None);
        r.record(0, 1, 1);
        assert_eq!(r.find(0), None, "rid 0 is never recorded");
        for rid in 1..=4 {
            r.record(rid, -(rid as i64), rid * 10);
        }
        assert_eq!(r.find(1), None, "the oldest aged out");
        assert_eq!(r.find(4), Some(Reply { rid: 4, result: -4, aux: 40 }));
        let mut bytes = [0u8; Replies::<3>::BYTES];
        r.encode(&mut bytes);
        let back = Replies::<3>::decode(&bytes);
        assert_eq!(back.find(3), r.find(3));
        // Applying only the last change to the old encoding gives the new one, and so does
        // the change computed before recording.
        let mut old = bytes;
        assert_eq!(r.change_for(5, -5, 50), {
            let mut after = r;
            after.record(5, -5, 50);
            after.last_change()
        });
        r.record(5, -5, 50);
        let mut want = [0u8; Replies::<3>::BYTES];
        r.encode(&mut want);
        for (at, b) in r.last_change() {
            let n = if at == 0 { 8 } else { 24 };
            old[at..at + n].copy_from_slice(&b[..n]);
        }
        assert_eq!(old, want);
        assert_eq!(Replies::<3>::decode(&[0; 4]).find(3), None);
    }
}
