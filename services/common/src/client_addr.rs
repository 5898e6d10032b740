//! The client's address behind a known number of trusted proxies.
//!
//! Each proxy appends the address it received the request from to
//! `X-Forwarded-For`, so with `hops` trusted proxies in front of us the client is the
//! `hops`-th entry from the right. Entries further left were written by the client and
//! are never trusted (taking the leftmost, as many frameworks do, lets anyone pick
//! their own rate-limit bucket).

use actix_web::HttpRequest;
use std::net::IpAddr;

/// The address to rate-limit and log for this request.
pub fn client_addr(req: &HttpRequest, trusted_hops: usize) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    if trusted_hops == 0 {
        return peer;
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    match forwarded.len().checked_sub(trusted_hops) {
        Some(index) => forwarded.get(index).and_then(|s| s.parse().ok()).or(peer),
        // Fewer entries than proxies: the first proxy saw the client directly.
        None => forwarded.first().and_then(|s| s.parse().ok()).or(peer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn trusts_only_proxy_written_entries() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.9:1234".parse().unwrap_or_else(|_| unreachable!()))
            .insert_header(("x-forwarded-for", "6.6.6.6, 203.0.113.7"))
            .to_http_request();
        assert_eq!(client_addr(&req, 0), "10.0.0.9".parse().ok());
        assert_eq!(client_addr(&req, 1), "203.0.113.7".parse().ok());
        assert_eq!(client_addr(&req, 2), "6.6.6.6".parse().ok());
        let direct = TestRequest::default()
            .peer_addr("10.0.0.9:1234".parse().unwrap_or_else(|_| unreachable!()))
            .to_http_request();
        assert_eq!(client_addr(&direct, 1), "10.0.0.9".parse().ok());
    }
}
