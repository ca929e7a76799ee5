//! Address classification (RFC 1122 §3.2.1.3, RFC 1812 §4.2.2.11, RFC 4291).

/// 224.0.0.0/4.
#[inline(always)]
pub const fn v4_is_multicast(a: &[u8; 4]) -> bool {
    a[0] & 0xf0 == 0xe0
}

/// 255.255.255.255 (limited broadcast).
#[inline(always)]
pub const fn v4_is_limited_broadcast(a: &[u8; 4]) -> bool {
    a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255
}

/// A source address that cannot name a single host: 0.0.0.0/8 ("this
/// network"), 127.0.0.0/8 (loopback: never valid on a wire), 224.0.0.0/4
/// (multicast), 255.255.255.255, and 240.0.0.0/4 (reserved, RFC 1812
/// §4.2.2.11 (e)) unless `reserved_is_host`. Directed broadcasts need the
/// interface's subnets and are checked by the caller against the address set.
#[inline(always)]
pub const fn v4_is_single_host_source(a: &[u8; 4], reserved_is_host: bool) -> bool {
    if a[0] == 0 || a[0] == 127 || v4_is_multicast(a) || v4_is_limited_broadcast(a) {
        return false;
    }
    reserved_is_host || a[0] < 240
}

/// ff00::/8.
#[inline(always)]
pub const fn v6_is_multicast(a: &[u8; 16]) -> bool {
    a[0] == 0xff
}

/// :: (unspecified), ::1 (loopback), ff00::/8 and IPv4-mapped addresses
/// (::ffff:0:0/96: "should not appear on the wire", RFC 4291 §2.5.5.2; a
/// reply to one would go to an IPv4 host through an IPv6 header) are not
/// single hosts.
#[inline(always)]
pub fn v6_is_single_host_source(a: &[u8; 16]) -> bool {
    if v6_is_multicast(a) || v6_is_v4_mapped(a) {
        return false;
    }
    let mut hi = 0u8;
    let mut i = 0;
    while i < 15 {
        hi |= a[i];
        i += 1;
    }
    // :: and ::1 are the only addresses with 15 leading zero bytes and a last
    // byte of 0 or 1.
    !(hi == 0 && a[15] <= 1)
}

/// Whether a message we send may carry this IPv4 source: a single host,
/// whatever the config says — never 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4,
/// 240.0.0.0/4 (even where `reserved_sources_are_hosts` lets such a source
/// be answered) or 255.255.255.255; directed broadcasts are checked by the
/// caller against the address set. Linux drops such packets as martians.
#[inline(always)]
pub const fn v4_may_send_from(a: &[u8; 4]) -> bool {
    v4_is_single_host_source(a, false)
}

/// Whether a message we send may carry this IPv6 source: not ::, ::1,
/// ff00::/8, nor an IPv4-mapped address (::ffff:0:0/96, which Linux drops on
/// receipt, `ipv6_rcv`).
#[inline(always)]
pub fn v6_may_send_from(a: &[u8; 16]) -> bool {
    v6_is_single_host_source(a)
}

/// ::ffff:0:0/96.
#[inline(always)]
pub fn v6_is_v4_mapped(a: &[u8; 16]) -> bool {
    let mut zero = 0u8;
    let mut i = 0;
    while i < 10 {
        zero |= a[i];
        i += 1;
    }
    zero == 0 && a[10] == 0xff && a[11] == 0xff
}

/// The I/G bit of a destination MAC: set for broadcast and multicast frames.
#[inline(always)]
pub const fn mac_is_group(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_source_boundaries() {
        let ok = |a: [u8; 4]| v4_is_single_host_source(&a, false);
        assert!(!ok([0, 0, 0, 0]));
        assert!(!ok([0, 255, 255, 255]));
        assert!(ok([1, 0, 0, 0]));
        assert!(ok([126, 255, 255, 255]));
        assert!(!ok([127, 0, 0, 1]));
        assert!(!ok([127, 255, 255, 255]));
        assert!(ok([128, 0, 0, 0]));
        assert!(ok([223, 255, 255, 255]));
        assert!(!ok([224, 0, 0, 0]));
        assert!(!ok([239, 255, 255, 255]));
        assert!(!ok([240, 0, 0, 0]));
        assert!(!ok([255, 255, 255, 255]));
        assert!(ok([192, 0, 2, 2]));
        // 240/4 as hosts when configured; 255.255.255.255 never.
        assert!(v4_is_single_host_source(&[240, 0, 0, 1], true));
        assert!(v4_is_single_host_source(&[255, 255, 255, 254], true));
        assert!(!v4_is_single_host_source(&[255, 255, 255, 255], true));
        assert!(!v4_is_single_host_source(&[224, 0, 0, 1], true));
    }

    #[test]
    fn v4_destination_classes() {
        assert!(v4_is_multicast(&[224, 0, 0, 1]));
        assert!(v4_is_multicast(&[239, 255, 255, 255]));
        assert!(!v4_is_multicast(&[223, 255, 255, 255]));
        assert!(!v4_is_multicast(&[240, 0, 0, 0]));
        assert!(v4_is_limited_broadcast(&[255; 4]));
        assert!(!v4_is_limited_broadcast(&[255, 255, 255, 254]));
    }

    #[test]
    fn v6_source_boundaries() {
        let mut a = [0u8; 16];
        assert!(!v6_is_single_host_source(&a), "::");
        a[15] = 1;
        assert!(!v6_is_single_host_source(&a), "::1");
        a[15] = 2;
        assert!(v6_is_single_host_source(&a), "::2");
        let mut b = [0u8; 16];
        b[0] = 0xff;
        b[15] = 1;
        assert!(!v6_is_single_host_source(&b), "ff00::1");
        b[0] = 0xfe;
        b[1] = 0x80;
        assert!(v6_is_single_host_source(&b), "fe80::1");
        let mut c = [0u8; 16];
        c[14] = 1;
        assert!(v6_is_single_host_source(&c), "::100");
    }

    #[test]
    fn mac_group_bit() {
        assert!(mac_is_group(&[0xff; 6]));
        assert!(mac_is_group(&[0x33, 0x33, 0, 0, 0, 1]));
        assert!(mac_is_group(&[0x01, 0x00, 0x5e, 0, 0, 1]));
        assert!(!mac_is_group(&[0x02, 0, 0, 0, 0, 1]));
    }
}
