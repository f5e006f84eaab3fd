//! The client's IP address behind reverse proxies (`TRUSTED_PROXIES`).
//!
//! The address is the TCP peer's, unless the peer is a trusted proxy: then it is the rightmost address of
//! `X-Forwarded-For` that is not itself a trusted proxy. Each proxy appends the address it received the request
//! from, so everything left of the first untrusted hop was written by someone we cannot believe: a client can
//! put anything in the header, but never choose the address our own proxy appended.

use std::net::{IpAddr, SocketAddr};

use actix_web::{HttpRequest, http::header::HeaderName, web};
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed. Empty: the header is ignored.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address, from the TCP peer and the `X-Forwarded-For` header values in the order received.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            // A hop that is not an address was not written by a proxy we trust: stop at the last good one.
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !self.trusts(ip) {
                return ip;
            }
        }
        // Every hop is a trusted proxy (e.g. a request from inside the proxy network): the leftmost one.
        client
    }
}

/// An `X-Forwarded-For` entry: an address, optionally with a port or IPv6 brackets.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|addr| addr.ip()))
        .or_else(|_| {
            hop.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
        })
        .ok()
        .map(|ip| ip.to_canonical())
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client's address: the peer's, or behind a trusted proxy the one it reports (see [`TrustedProxies`]).
pub(crate) fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded_for = req
        .headers()
        .get_all(X_FORWARDED_FOR)
        .filter_map(|value| value.to_str().ok());
    Some(match req.app_data::<web::Data<TrustedProxies>>() {
        Some(trusted) => trusted.client_ip(peer, forwarded_for),
        None => peer.to_canonical(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("203.0.113.9"), ["198.51.100.1"].into_iter()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            trusted.client_ip(ip("203.0.113.9"), ["1.2.3.4"].into_iter()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "192.168.1.1/32"]);
        // The client sent a forged first entry; our proxies appended the real address and each other.
        let chain = ["6.6.6.6, 198.51.100.7", "10.1.1.1"];
        assert_eq!(
            trusted.client_ip(ip("192.168.1.1"), chain.into_iter()),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_chain_of_only_trusted_hops_gives_the_leftmost() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            trusted.client_ip(ip("10.0.0.2"), ["10.0.0.9, 10.0.0.3"].into_iter()),
            ip("10.0.0.9")
        );
        assert_eq!(
            trusted.client_ip(ip("10.0.0.2"), std::iter::empty()),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn garbage_stops_at_the_last_trusted_hop_and_ports_and_brackets_are_read() {
        let trusted = proxies(&["10.0.0.0/8", "::1/128"]);
        assert_eq!(
            trusted.client_ip(ip("10.0.0.2"), ["unknown, 10.0.0.5"].into_iter()),
            ip("10.0.0.5")
        );
        assert_eq!(
            trusted.client_ip(ip("::1"), ["198.51.100.7:4711"].into_iter()),
            ip("198.51.100.7")
        );
        assert_eq!(
            trusted.client_ip(ip("::1"), ["[2001:db8::1]"].into_iter()),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_proxies() {
        let trusted = proxies(&["127.0.0.1/32"]);
        assert_eq!(
            trusted.client_ip(ip("::ffff:127.0.0.1"), ["198.51.100.7"].into_iter()),
            ip("198.51.100.7")
        );
    }
}
