//! The client's address behind trusted proxies, and the key it is rate-limited by.
//!
//! Each proxy appends the address it received the request from to `X-Forwarded-For`.
//! The header is read only when the peer is a configured proxy (address or CIDR), and
//! then from the right, at most `hops` entries, stopping at the first address that is
//! not a trusted proxy. Entries further left were written by the client and are never
//! trusted (taking the leftmost, as many frameworks do, lets anyone pick their own
//! rate-limit bucket).

use crate::config::{ConfigError, Env};
use actix_web::HttpRequest;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv6Addr};

/// Which peers may speak for the client through `X-Forwarded-For`.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    hops: usize,
}

impl TrustedProxies {
    /// Trust nobody: the client is the peer.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trust peers in `networks`, through at most `hops` proxies.
    pub fn new(networks: Vec<IpNet>, hops: usize) -> Self {
        Self { networks, hops }
    }

    /// `TRUSTED_PROXIES` (comma-separated addresses or CIDRs, default none) and
    /// `TRUSTED_PROXY_HOPS` (default 1 when proxies are set).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let raw = env.raw("TRUSTED_PROXIES").unwrap_or_default();
        let networks = raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| ConfigError::Invalid {
                        var: "TRUSTED_PROXIES".into(),
                        value: s.to_owned(),
                        reason: "expected an IP address or CIDR".into(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let default_hops = usize::from(!networks.is_empty());
        let hops = env.int_in("TRUSTED_PROXY_HOPS", default_hops, 0..=10)?;
        Ok(Self { networks, hops })
    }

    /// Whether no proxy is trusted (every peer is taken as the client).
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() || self.hops == 0
    }

    fn trusts(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.networks.iter().any(|n| n.contains(&addr))
    }

    /// The address to rate-limit and log for this request.
    pub fn client_addr(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr().map(|a| canonical(a.ip()))?;
        if self.hops == 0 || !self.trusts(peer) {
            return Some(peer);
        }
        let mut forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .rev();
        let mut client = peer;
        for _ in 0..self.hops {
            if !self.trusts(client) {
                break;
            }
            match forwarded.next().and_then(|s| s.parse::<IpAddr>().ok()) {
                Some(next) => client = canonical(next),
                // A trusted proxy that wrote nothing (or garbage) saw the client itself.
                None => break,
            }
        }
        Some(client)
    }
}

/// The request's scheme as actix's `ConnectionInfo::scheme` reads it (`Forwarded`'s
/// `proto`, then `X-Forwarded-Proto`, then the URI's, then the listener's), without
/// building a `ConnectionInfo` (host and address strings) when no header names one:
/// nearly every request, on every hop.
pub fn scheme(req: &HttpRequest) -> std::borrow::Cow<'_, str> {
    use actix_web::http::header;
    let headers = req.headers();
    if headers.contains_key(header::FORWARDED) || headers.contains_key("x-forwarded-proto") {
        return std::borrow::Cow::Owned(req.connection_info().scheme().to_owned());
    }
    std::borrow::Cow::Borrowed(match req.uri().scheme_str() {
        Some(scheme) => scheme,
        None if req.app_config().secure() => "https",
        None => "http",
    })
}

/// `addr` as a header value (IPv4, nearly every address here, without `fmt`).
pub fn header_value(addr: IpAddr) -> Option<actix_web::http::header::HeaderValue> {
    let IpAddr::V4(v4) = addr else {
        return actix_web::http::header::HeaderValue::from_str(&addr.to_string()).ok();
    };
    let mut text = [0u8; 15];
    let mut len = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[len] = b'.';
            len += 1;
        }
        let digits = [octet / 100, octet / 10 % 10, octet % 10];
        let skip = if octet >= 100 {
            0
        } else if octet >= 10 {
            1
        } else {
            2
        };
        for digit in &digits[skip..] {
            text[len] = b'0' + digit;
            len += 1;
        }
    }
    actix_web::http::header::HeaderValue::from_bytes(&text[..len]).ok()
}

/// IPv4-mapped IPv6 addresses are IPv4 addresses.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The key a client is rate-limited by: its IPv4 address, or its IPv6 /64 (one
/// customer usually gets a whole /64, so per-/128 limits are trivially evaded).
pub fn rate_key(addr: IpAddr) -> IpAddr {
    match canonical(addr) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn addresses_become_the_header_values_display_would_write() {
        for addr in [
            "0.0.0.0",
            "1.2.3.4",
            "10.0.100.9",
            "255.255.255.255",
            "192.168.1.10",
            "::1",
            "2001:db8::7",
        ] {
            let ip: IpAddr = addr.parse().unwrap();
            assert_eq!(header_value(ip).unwrap().to_str().unwrap(), ip.to_string());
        }
    }

    #[test]
    fn the_scheme_is_the_one_connection_info_reads() {
        for headers in [
            vec![],
            vec![("x-forwarded-proto", "https")],
            vec![("forwarded", "for=1.2.3.4; proto=https")],
            vec![("forwarded", "for=1.2.3.4"), ("x-forwarded-proto", "wss")],
        ] {
            let mut r = TestRequest::default();
            for header in &headers {
                r = r.insert_header(*header);
            }
            let req = r.to_http_request();
            assert_eq!(scheme(&req), req.connection_info().scheme(), "{headers:?}");
        }
    }

    fn req(peer: &str, xff: Option<&str>) -> HttpRequest {
        let mut r = TestRequest::default().peer_addr(peer.parse().unwrap());
        if let Some(xff) = xff {
            r = r.insert_header(("x-forwarded-for", xff));
        }
        r.to_http_request()
    }

    fn proxies(nets: &[&str], hops: usize) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect(), hops)
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_peers() {
        let spoofed = req("203.0.113.9:1234", Some("6.6.6.6"));
        // An untrusted peer cannot choose its address by sending the header.
        assert_eq!(
            proxies(&["10.0.0.0/8"], 1).client_addr(&spoofed),
            "203.0.113.9".parse().ok()
        );
        assert_eq!(
            TrustedProxies::none().client_addr(&spoofed),
            "203.0.113.9".parse().ok()
        );
        // Behind one trusted proxy: the entry it wrote, not the client's own.
        let proxied = req("10.0.0.9:1234", Some("6.6.6.6, 203.0.113.7"));
        assert_eq!(
            proxies(&["10.0.0.0/8"], 1).client_addr(&proxied),
            "203.0.113.7".parse().ok()
        );
        // Two trusted proxies: skip the inner one, stop at the first untrusted entry.
        let twice = req("10.0.0.9:1234", Some("6.6.6.6, 203.0.113.7, 10.1.2.3"));
        assert_eq!(
            proxies(&["10.0.0.0/8"], 2).client_addr(&twice),
            "203.0.113.7".parse().ok()
        );
        assert_eq!(
            proxies(&["10.0.0.0/8"], 5).client_addr(&twice),
            "203.0.113.7".parse().ok()
        );
        // A trusted proxy with no header saw the client directly.
        let direct = req("10.0.0.9:1234", None);
        assert_eq!(
            proxies(&["10.0.0.0/8"], 1).client_addr(&direct),
            "10.0.0.9".parse().ok()
        );
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let a = rate_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = rate_key("2001:db8:1:2:bbbb::9".parse().unwrap());
        let other = rate_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, other);
        assert_eq!(a, "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_eq!(
            rate_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            rate_key("192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
}
