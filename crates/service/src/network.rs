//! Which addresses the server may connect to on a tenant's behalf (SPEC §6 v2, "External
//! endpoints"). Pure logic: the checks themselves run in [`crate::outbound`].
//!
//! The default is public unicast only. An `external` instance is an arbitrary URL typed by a
//! tenant; without this rule the server would call its own loopback services, the provider's
//! private network or the cloud metadata service for them (server-side request forgery), and
//! relay what they answer. `providers.external.allowed_networks` lists networks the operator
//! adds to the public default (e.g. a private model network).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 network, `address/prefix` (a bare address is a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside this network (an IPv4 network never contains an IPv6 address:
    /// the mapped form is handled by [`AllowedNetworks::allows`]).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => v4_in(ip, net, self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => v6_in(ip, net, self.prefix),
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// Host bits are cleared (`10.1.2.3/8` is `10.0.0.0/8`): operators often write a
    /// machine's address with its network's prefix, and both mean the same network.
    fn from_str(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR network"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {max}"))?,
        };
        let network = match network {
            IpAddr::V4(ip) => IpAddr::V4(Ipv4Addr::from(u32::from(ip) & mask32(prefix))),
            IpAddr::V6(ip) => IpAddr::V6(Ipv6Addr::from(u128::from(ip) & mask128(prefix))),
        };
        Ok(Cidr { network, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

fn v4_in(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let mask = mask32(prefix);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn v6_in(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = mask128(prefix);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// IPv4 networks that are not public unicast (IANA special-purpose registry, RFC 6890 and
/// successors). Documentation ranges are refused too: nothing legitimate answers there.
const NOT_PUBLIC_V4: [([u8; 4], u8); 15] = [
    ([0, 0, 0, 0], 8),       // "this network", unspecified
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // carrier-grade NAT
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local, cloud metadata (169.254.169.254)
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation (TEST-NET-1)
    ([192, 88, 99, 0], 24),  // 6to4 relay anycast (deprecated)
    ([192, 168, 0, 0], 16),  // private
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation (TEST-NET-2)
    ([203, 0, 113, 0], 24),  // documentation (TEST-NET-3)
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, and 255.255.255.255 (broadcast)
];

/// Whether `ip` is a public unicast IPv4 address.
pub fn is_public_v4(ip: Ipv4Addr) -> bool {
    !NOT_PUBLIC_V4
        .iter()
        .any(|(net, prefix)| v4_in(ip, Ipv4Addr::from(*net), *prefix))
}

/// The IPv4 address an IPv6 address stands for, where it embeds one that the network may
/// deliver to: IPv4-mapped `::ffff:0:0/96` (a dual-stack socket connects to the IPv4
/// address), IPv4-compatible `::/96` (deprecated; `::` and `::1` fall in it and embed
/// `0.0.0.0/8` addresses), NAT64 `64:ff9b::/96` (the translator connects to it) and 6to4
/// `2002::/16` (the relay delivers to it).
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if v6_in(ip, Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96)
        || v6_in(ip, Ipv6Addr::UNSPECIFIED, 96)
        || v6_in(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96)
    {
        return Some(low32);
    }
    if v6_in(ip, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

/// Whether `ip` is a public unicast IPv6 address: inside the global unicast block `2000::/3`
/// (which leaves out unspecified, loopback, ULA `fc00::/7`, link-local `fe80::/10`, site-local,
/// multicast `ff00::/8`, local-use NAT64 `64:ff9b:1::/48`, discard `100::/64`…), minus its
/// special-purpose blocks; a form embedding an IPv4 address is judged by that address.
pub fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let block =
        |a: u16, b: u16, prefix: u8| v6_in(ip, Ipv6Addr::new(a, b, 0, 0, 0, 0, 0, 0), prefix);
    block(0x2000, 0, 3)
        // IETF protocol assignments: Teredo 2001::/32 (embeds an IPv4 address, obfuscated),
        // benchmarking 2001:2::/48, ORCHID; nothing a model server is reached at.
        && !block(0x2001, 0, 23)
        // Documentation.
        && !block(0x2001, 0xdb8, 32)
        && !block(0x3fff, 0, 20)
}

/// Whether `ip` is public unicast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// `providers.external.allowed_networks`: the public default plus the operator's networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedNetworks {
    extra: Vec<Cidr>,
}

impl AllowedNetworks {
    /// Public unicast only (an empty `allowed_networks`).
    pub fn public_only() -> AllowedNetworks {
        AllowedNetworks::default()
    }

    /// Parses the configured list (empty entries are skipped: an empty environment variable
    /// means "nothing added").
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<AllowedNetworks, String> {
        let extra = list
            .iter()
            .map(AsRef::as_ref)
            .filter(|entry| !entry.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<Cidr>, String>>()?;
        Ok(AllowedNetworks { extra })
    }

    /// The networks added to the public default.
    pub fn extra(&self) -> &[Cidr] {
        &self.extra
    }

    /// Whether the server may connect to `ip`. An IPv4-mapped address is the IPv4 address it
    /// maps (a socket connects to exactly that), so `127.0.0.0/8` also allows
    /// `::ffff:127.0.0.1` and nothing else widens an operator's entry.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let canonical = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        self.extra
            .iter()
            .any(|net| net.contains(ip) || net.contains(canonical))
            || is_public(ip)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_default_refuses_every_non_public_ipv4_range() {
        let public = AllowedNetworks::public_only();
        for refused in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.170",
            "192.0.2.10",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!public.allows(ip(refused)), "{refused} must be refused");
        }
        for allowed in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
        ] {
            assert!(public.allows(ip(allowed)), "{allowed} is public");
        }
    }

    #[test]
    fn the_default_refuses_every_non_public_ipv6_range() {
        let public = AllowedNetworks::public_only();
        for refused in [
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2001:2::1",
            "3fff::1",
            "64:ff9b:1::1",
            "::ffff:0:7f00:1",
        ] {
            assert!(!public.allows(ip(refused)), "{refused} must be refused");
        }
        for allowed in [
            "2606:4700:4700::1111",
            "2a00:1450:4007:80e::200e",
            "2400::1",
        ] {
            assert!(public.allows(ip(allowed)), "{allowed} is public");
        }
    }

    #[test]
    fn forms_embedding_an_ipv4_address_are_judged_by_it() {
        let public = AllowedNetworks::public_only();
        for refused in [
            // IPv4-mapped
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::ffff:0.0.0.0",
            // IPv4-compatible (deprecated)
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
            // NAT64
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::192.168.0.1",
            // 6to4: 2002:AABB:CCDD::/48 embeds AA.BB.CC.DD
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "2002:c0a8:101:1::1",
            "2002:0a00:0001::5",
        ] {
            assert!(!public.allows(ip(refused)), "{refused} must be refused");
        }
        for allowed in [
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "64:ff9b::1.1.1.1",
            "2002:0808:0808::1",
        ] {
            assert!(
                public.allows(ip(allowed)),
                "{allowed} embeds a public address"
            );
        }
        assert_eq!(
            embedded_v4("2002:c0a8:0101::".parse().unwrap()),
            Some(Ipv4Addr::new(192, 168, 1, 1))
        );
        assert_eq!(embedded_v4("2a00::1".parse().unwrap()), None);
    }

    #[test]
    fn listed_networks_add_to_the_public_default() {
        let dev = AllowedNetworks::parse(&["127.0.0.0/8", "::1", " 10.1.0.0/16 "]).unwrap();
        for allowed in [
            "127.0.0.1",
            "127.3.4.5",
            "::1",
            "::ffff:127.0.0.1",
            "10.1.200.3",
            "8.8.8.8",
            "2606:4700:4700::1111",
        ] {
            assert!(dev.allows(ip(allowed)), "{allowed}");
        }
        // Only what is listed: the rest of the private ranges, and forms that reach an
        // address through a translator or relay, stay refused.
        for refused in [
            "10.2.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "::2",
            "fe80::1",
            "64:ff9b::127.0.0.1",
            "2002:7f00:1::1",
        ] {
            assert!(!dev.allows(ip(refused)), "{refused}");
        }
        let ula = AllowedNetworks::parse(&["fd00:1::/32"]).unwrap();
        assert!(ula.allows(ip("fd00:1:2::3")));
        assert!(!ula.allows(ip("fd00:2::3")));
    }

    #[test]
    fn cidrs_parse_strictly_and_host_bits_are_cleared() {
        let net: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert_eq!("1.2.3.4".parse::<Cidr>().unwrap().to_string(), "1.2.3.4/32");
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .unwrap()
                .contains(ip("127.0.0.1"))
        );
        assert!(!"0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("::1")));
        assert!("::/0".parse::<Cidr>().unwrap().contains(ip("fe80::1")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "localhost",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "127.1",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert!(AllowedNetworks::parse(&["10.0.0.0/8", "nope"]).is_err());
        assert_eq!(
            AllowedNetworks::parse(&[""]).unwrap(),
            AllowedNetworks::public_only()
        );
    }
}
