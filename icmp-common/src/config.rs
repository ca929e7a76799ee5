//! Configuration and address sets, as the XDP program reads them from maps.

/// `Config::flags`: the program acts at all (a zeroed, never-written config
/// leaves every frame to the kernel).
pub const FLAG_ENABLED: u32 = 1 << 0;
/// `Config::flags`: answer echo requests for any destination address, not
/// only the interface's own.
pub const FLAG_ANSWER_ANY_DST: u32 = 1 << 1;
/// `Config::flags`: answer IPv4 echo requests.
pub const FLAG_ECHO_V4: u32 = 1 << 2;
/// `Config::flags`: answer ICMPv6 echo requests.
pub const FLAG_ECHO_V6: u32 = 1 << 3;
/// `Config::flags`: log each decision through aya-log (debugging only).
pub const FLAG_LOG_DECISIONS: u32 = 1 << 4;

/// The one entry of the `CONFIG` array map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub flags: u32,
    /// TTL of IPv4 messages we send.
    pub ttl: u8,
    /// Hop limit of IPv6 messages we send.
    pub hop_limit: u8,
    pub _pad: [u8; 2],
}

impl Config {
    pub const DEFAULT_TTL: u8 = 64;

    pub const fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            flags: FLAG_ENABLED | FLAG_ECHO_V4 | FLAG_ECHO_V6,
            ttl: Self::DEFAULT_TTL,
            hop_limit: Self::DEFAULT_TTL,
            _pad: [0; 2],
        }
    }
}

/// Most IPv4 addresses (and as many directed broadcasts) one interface can have
/// in the address set; the loader warns about the rest.
pub const MAX_V4_ADDRS: usize = 16;
/// Most IPv6 addresses one interface can have in the address set.
pub const MAX_V6_ADDRS: usize = 16;

/// The interface's own addresses: the one entry of the `ADDRS` array map.
///
/// A fixed array scanned linearly rather than a hash map: a bounded scan of a
/// few words is inlined by the verifier and costs less than one hash-map
/// helper call, and interfaces rarely have more than a handful of addresses.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrSet {
    pub v4: [[u8; 4]; MAX_V4_ADDRS],
    /// Directed broadcast address of each IPv4 subnet on the interface.
    pub v4_broadcast: [[u8; 4]; MAX_V4_ADDRS],
    pub v6: [[u8; 16]; MAX_V6_ADDRS],
    pub v4_len: u32,
    pub v4_broadcast_len: u32,
    pub v6_len: u32,
    pub _pad: u32,
}

impl Default for AddrSet {
    fn default() -> Self {
        Self {
            v4: [[0; 4]; MAX_V4_ADDRS],
            v4_broadcast: [[0; 4]; MAX_V4_ADDRS],
            v6: [[0; 16]; MAX_V6_ADDRS],
            v4_len: 0,
            v4_broadcast_len: 0,
            v6_len: 0,
            _pad: 0,
        }
    }
}

impl AddrSet {
    #[inline(always)]
    pub fn has_v4(&self, a: &[u8; 4]) -> bool {
        contains(&self.v4, self.v4_len, a)
    }

    #[inline(always)]
    pub fn is_v4_broadcast(&self, a: &[u8; 4]) -> bool {
        contains(&self.v4_broadcast, self.v4_broadcast_len, a)
    }

    #[inline(always)]
    pub fn has_v6(&self, a: &[u8; 16]) -> bool {
        contains(&self.v6, self.v6_len, a)
    }

    /// Adds an address; false when the set is full.
    pub fn push_v4(&mut self, a: [u8; 4]) -> bool {
        push(&mut self.v4, &mut self.v4_len, a)
    }

    pub fn push_v4_broadcast(&mut self, a: [u8; 4]) -> bool {
        push(&mut self.v4_broadcast, &mut self.v4_broadcast_len, a)
    }

    pub fn push_v6(&mut self, a: [u8; 16]) -> bool {
        push(&mut self.v6, &mut self.v6_len, a)
    }
}

#[inline(always)]
fn contains<const N: usize, T: PartialEq>(set: &[T; N], len: u32, x: &T) -> bool {
    // Bounded by the array size so the verifier sees a constant trip count.
    let mut i = 0;
    while i < N {
        if (i as u32) < len && set[i] == *x {
            return true;
        }
        i += 1;
    }
    false
}

fn push<const N: usize, T: PartialEq + Copy>(set: &mut [T; N], len: &mut u32, x: T) -> bool {
    if contains(set, *len, &x) {
        return true;
    }
    let Some(slot) = set.get_mut(*len as usize) else {
        return false;
    };
    *slot = x;
    *len += 1;
    true
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: both are #[repr(C)] plain integers/arrays with explicit padding
    // fields, so every bit pattern is valid and there are no implicit holes.
    unsafe impl aya::Pod for super::Config {}
    unsafe impl aya::Pod for super::AddrSet {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_set_membership_respects_len() {
        let mut s = AddrSet::default();
        // A zeroed slot beyond len must not match 0.0.0.0.
        assert!(!s.has_v4(&[0, 0, 0, 0]));
        assert!(s.push_v4([192, 0, 2, 1]));
        assert!(s.has_v4(&[192, 0, 2, 1]));
        assert!(!s.has_v4(&[192, 0, 2, 2]));
        assert!(s.push_v4([192, 0, 2, 1]), "duplicates are accepted once");
        assert_eq!(s.v4_len, 1);
        for i in 1..MAX_V4_ADDRS as u8 {
            assert!(s.push_v4([10, 0, 0, i]));
        }
        assert!(!s.push_v4([10, 0, 1, 0]), "full set refuses");
        assert!(s.has_v4(&[10, 0, 0, (MAX_V4_ADDRS - 1) as u8]));
    }

    #[test]
    fn struct_sizes_have_no_implicit_padding() {
        assert_eq!(core::mem::size_of::<Config>(), 8);
        assert_eq!(
            core::mem::size_of::<AddrSet>(),
            4 * MAX_V4_ADDRS * 2 + 16 * MAX_V6_ADDRS + 16
        );
    }
}
