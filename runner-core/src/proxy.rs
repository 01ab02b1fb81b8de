//! Egress proxy for the control-plane WebSocket: `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY`
//! (and their lower-case forms) with `NO_PROXY`, as curl reads them, and an HTTP `CONNECT`
//! tunnel (with `Proxy-Authorization: Basic` from the proxy URL's user and password) over which
//! TLS and the WebSocket run unchanged.
//!
//! The variables are read through a lookup (runner-bin passes the process environment), never
//! from `std::env` here. Proxy credentials are kept in a type whose `Debug` masks them, and every
//! message shows the proxy as `http://user:***@host:port`.

use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::CoreError;

/// The proxy variables, in the order they are looked up (upper case first, as curl and reqwest
/// do for all but `HTTP_PROXY`; see docs/configuration.md).
pub const HTTPS_VARS: [&str; 2] = ["HTTPS_PROXY", "https_proxy"];
pub const HTTP_VARS: [&str; 2] = ["HTTP_PROXY", "http_proxy"];
pub const ALL_VARS: [&str; 2] = ["ALL_PROXY", "all_proxy"];
pub const NO_PROXY_VARS: [&str; 2] = ["NO_PROXY", "no_proxy"];

/// An `http://[user[:password]@]host[:port]` proxy.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    host: String,
    port: u16,
    /// `user:password`, percent-decoded.
    credentials: Option<(String, String)>,
    /// The variable it came from (`HTTPS_PROXY`, `https_proxy`, `ALL_PROXY`...).
    var: &'static str,
}

impl ProxyUrl {
    /// Parses a proxy URL as curl does: a missing scheme means `http://`; a missing port is 80
    /// (reqwest's default, so that the Argo client in the same process agrees).
    pub fn parse(var: &'static str, raw: &str) -> Result<ProxyUrl, CoreError> {
        let invalid = |reason: String| CoreError::InvalidProxy { var, reason };
        let raw = raw.trim();
        let rest = match raw.split_once("://") {
            None => raw,
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(invalid(format!(
                    "the scheme `{scheme}://` is not supported for the control-plane connection (only http:// proxies, which tunnel with CONNECT)"
                )));
            }
        };
        // Authority ends at the first '/', '?' or '#'.
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let credentials = userinfo.map(|u| {
            let (user, pass) = u.split_once(':').unwrap_or((u, ""));
            (percent_decode(user), percent_decode(pass))
        });
        let (host, port) = split_host_port(hostport).ok_or_else(|| {
            invalid("no host, or a port that is not a number from 1 to 65535".into())
        })?;
        if host.is_empty() {
            return Err(invalid("no host".into()));
        }
        Ok(ProxyUrl {
            host,
            port: port.unwrap_or(80),
            credentials,
            var,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The variable this proxy was read from.
    pub fn var(&self) -> &'static str {
        self.var
    }

    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// `Basic base64(user:password)`, for `Proxy-Authorization`.
    fn basic_auth(&self) -> Option<String> {
        self.credentials.as_ref().map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        })
    }
}

/// `http://user:***@host:port`: the password never shows.
impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match &self.credentials {
            Some((user, _)) => write!(f, "http://{user}:***@{host}:{}", self.port),
            None => write!(f, "http://{host}:{}", self.port),
        }
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({self} from {})", self.var)
    }
}

/// One `NO_PROXY` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NoProxyEntry {
    /// `*`: no proxy at all.
    All,
    /// A domain: matches itself and its subdomains (a leading dot is ignored, as curl does).
    Domain { name: String, port: Option<u16> },
    /// An address or a CIDR block.
    Ip {
        net: IpAddr,
        prefix: u8,
        port: Option<u16>,
    },
}

/// `NO_PROXY`: comma- (or space-) separated host names, domain suffixes (`example.com`,
/// `.example.com`), IP addresses, CIDR blocks (`10.0.0.0/8`), each optionally with `:port`, or
/// `*`. Matching ignores case and a trailing dot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<NoProxyEntry>,
}

impl NoProxy {
    pub fn parse(list: &str) -> NoProxy {
        let mut entries = Vec::new();
        for item in list.split([',', ' ', '\t', '\n']).map(str::trim) {
            if item.is_empty() {
                continue;
            }
            if item == "*" {
                entries.push(NoProxyEntry::All);
                continue;
            }
            // `net/prefix[:port]`, or a host with an optional port.
            let (host, prefix, port) = match item.split_once('/') {
                Some((net, rest)) => {
                    let (prefix, port) = match rest.split_once(':') {
                        Some((p, port)) => match port.parse::<u16>() {
                            Ok(port) => (p, Some(port)),
                            Err(_) => continue,
                        },
                        None => (rest, None),
                    };
                    let Ok(prefix) = prefix.parse::<u8>() else {
                        continue;
                    };
                    (net.trim_matches(['[', ']']).to_owned(), Some(prefix), port)
                }
                None => match split_host_port(item) {
                    Some((host, port)) => (host, None, port),
                    None => continue,
                },
            };
            if let Ok(ip) = host.parse::<IpAddr>() {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                entries.push(NoProxyEntry::Ip {
                    net: ip,
                    prefix: prefix.unwrap_or(max).min(max),
                    port,
                });
            } else {
                let name = host
                    .trim_start_matches('.')
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                if !name.is_empty() {
                    entries.push(NoProxyEntry::Domain { name, port });
                }
            }
        }
        NoProxy { entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `host:port` is to be reached directly.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|e| match e {
            NoProxyEntry::All => true,
            NoProxyEntry::Domain { name, port: p } => {
                p.is_none_or(|p| p == port)
                    && ip.is_none()
                    && (host == *name
                        || (host.len() > name.len()
                            && host.ends_with(name.as_str())
                            && host.as_bytes()[host.len() - name.len() - 1] == b'.'))
            }
            NoProxyEntry::Ip {
                net,
                prefix,
                port: p,
            } => p.is_none_or(|p| p == port) && ip.is_some_and(|ip| in_net(ip, *net, *prefix)),
        })
    }
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. `None` when a port is not
/// a number from 1 to 65535.
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0);
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((host.to_owned(), Some(port(p)?))),
            None if after.is_empty() => Some((host.to_owned(), None)),
            None => None,
        };
    }
    match s.matches(':').count() {
        0 => Some((s.to_owned(), None)),
        1 => {
            let (h, p) = s.split_once(':')?;
            Some((h.to_owned(), Some(port(p)?)))
        }
        // A bare IPv6 address.
        _ => Some((s.to_owned(), None)),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The proxy settings of the control-plane connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// For `wss://`: `HTTPS_PROXY`, else `ALL_PROXY`.
    pub https: Option<ProxyUrl>,
    /// For `ws://`: `HTTP_PROXY`, else `ALL_PROXY`.
    pub http: Option<ProxyUrl>,
    /// `NO_PROXY`.
    pub no_proxy: NoProxy,
}

impl ProxyConfig {
    /// Reads `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY` (each upper case first, then
    /// lower case) through `get`. Empty values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<ProxyConfig, CoreError> {
        let first = |names: [&'static str; 2]| {
            names
                .into_iter()
                .find_map(|n| get(n).filter(|v| !v.trim().is_empty()).map(|v| (n, v)))
        };
        let parse = |names| {
            first(names)
                .map(|(n, v)| ProxyUrl::parse(n, &v))
                .transpose()
        };
        let all = parse(ALL_VARS)?;
        Ok(ProxyConfig {
            https: parse(HTTPS_VARS)?.or_else(|| all.clone()),
            http: parse(HTTP_VARS)?.or(all),
            no_proxy: first(NO_PROXY_VARS)
                .map(|(_, v)| NoProxy::parse(&v))
                .unwrap_or_default(),
        })
    }

    /// The proxy to use for `host:port` (`tls`: a `wss://` target), or `None` to connect
    /// directly.
    pub fn for_target(&self, tls: bool, host: &str, port: u16) -> Option<&ProxyUrl> {
        let proxy = if tls { &self.https } else { &self.http };
        proxy
            .as_ref()
            .filter(|_| !self.no_proxy.matches(host, port))
    }
}

/// Largest proxy answer head read.
const MAX_HEAD: usize = 16 * 1024;

/// Opens a TCP connection to `proxy` and a `CONNECT host:port` tunnel through it. The stream
/// returned carries bytes to `host:port` as if connected directly.
pub async fn connect_tunnel(
    proxy: &ProxyUrl,
    host: &str,
    port: u16,
    server_url: &str,
) -> Result<TcpStream, CoreError> {
    let err = |reason: String| CoreError::Proxy {
        url: server_url.to_owned(),
        proxy: proxy.to_string(),
        var: proxy.var,
        reason,
    };
    let mut tcp = TcpStream::connect((proxy.host.as_str(), proxy.port))
        .await
        .map_err(|e| {
            err(format!(
                "cannot connect to the proxy: {e}; check the proxy's host and port in {}",
                proxy.var
            ))
        })?;
    let _ = tcp.set_nodelay(true);
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut head = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: hybrid-ingestion-runner/{}\r\n",
        crate::VERSION
    );
    if let Some(auth) = proxy.basic_auth() {
        head.push_str("Proxy-Authorization: ");
        head.push_str(&auth);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes())
        .await
        .map_err(|e| err(format!("the proxy closed the connection: {e}")))?;
    drop(head);
    // Read the answer's head byte by byte: nothing after it may be consumed, since the bytes
    // that follow belong to the tunnelled connection.
    let mut answer = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= MAX_HEAD {
            return Err(err(format!(
                "the proxy's answer to CONNECT {target} is longer than {MAX_HEAD} bytes; is {} a proxy?",
                proxy.var
            )));
        }
        match tcp.read(&mut byte).await {
            Ok(0) => {
                return Err(err(format!(
                    "the proxy closed the connection without answering CONNECT {target}; check that {} points to an HTTP proxy",
                    proxy.var
                )));
            }
            Ok(_) => answer.push(byte[0]),
            Err(e) => return Err(err(format!("reading the proxy's answer: {e}"))),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let mut lines = text.split("\r\n");
    let status_line = printable(lines.next().unwrap_or_default());
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(200..=299) => Ok(tcp),
        Some(407) => {
            let challenge = lines
                .find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("proxy-authenticate"))
                        .map(|(_, v)| printable(v.trim()))
                })
                .map(|c| format!(" (it asks for: {c})"))
                .unwrap_or_default();
            let fix = if proxy.has_credentials() {
                format!(
                    "the proxy refused the user and password in {}; correct them (percent-encode special characters)",
                    proxy.var
                )
            } else {
                format!(
                    "the proxy needs credentials: set {} to http://USER:PASSWORD@{}:{} (percent-encode special characters)",
                    proxy.var, proxy.host, proxy.port
                )
            };
            Err(err(format!(
                "the proxy answered `{status_line}` to CONNECT {target}{challenge}; {fix}"
            )))
        }
        Some(_) => Err(err(format!(
            "the proxy answered `{status_line}` to CONNECT {target}; the proxy must allow CONNECT to {target} (ask its administrators), or add {host} to NO_PROXY if the server is reachable without it"
        ))),
        None => Err(err(format!(
            "the proxy's answer to CONNECT {target} is not HTTP (`{status_line}`); check that {} points to an HTTP proxy",
            proxy.var
        ))),
    }
}

/// At most 200 printable characters of a line from the network.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn proxy_urls_parse_and_mask() {
        let p = ProxyUrl::parse("HTTPS_PROXY", "http://us%40er:p%3Ass@proxy.corp:3128/").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.corp", 3128));
        assert_eq!(p.credentials, Some(("us@er".to_owned(), "p:ss".to_owned())));
        assert_eq!(p.to_string(), "http://us@er:***@proxy.corp:3128");
        assert!(!format!("{p:?}").contains("p:ss"));
        assert_eq!(p.basic_auth().unwrap(), "Basic dXNAZXI6cDpzcw==");
        let p = ProxyUrl::parse("https_proxy", "proxy.corp").unwrap();
        assert_eq!(
            (p.host(), p.port(), p.var()),
            ("proxy.corp", 80, "https_proxy")
        );
        let p = ProxyUrl::parse("HTTPS_PROXY", "http://[fd00::1]:8080").unwrap();
        assert_eq!((p.host(), p.port()), ("fd00::1", 8080));
        let e = ProxyUrl::parse("HTTPS_PROXY", "socks5://u:secret@proxy:1080").unwrap_err();
        assert!(
            e.to_string().contains("HTTPS_PROXY") && !e.to_string().contains("secret"),
            "{e}"
        );
        assert!(ProxyUrl::parse("HTTPS_PROXY", "http://proxy:99999").is_err());
        assert!(ProxyUrl::parse("HTTPS_PROXY", "http://:3128").is_err());
    }

    #[test]
    fn variables_and_precedence() {
        let c = ProxyConfig::from_lookup(lookup(&[
            ("https_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "http://upper:2"),
            ("ALL_PROXY", "http://all:3"),
            ("no_proxy", ".internal"),
        ]))
        .unwrap();
        assert_eq!(c.https.as_ref().unwrap().host(), "upper");
        assert_eq!(c.http.as_ref().unwrap().host(), "all");
        assert_eq!(c.http.as_ref().unwrap().var(), "ALL_PROXY");
        assert!(c.for_target(true, "cp.example.com", 443).is_some());
        assert!(c.for_target(true, "cp.internal", 443).is_none());
        let none = ProxyConfig::from_lookup(lookup(&[("HTTPS_PROXY", " ")])).unwrap();
        assert_eq!(none, ProxyConfig::default());
    }

    #[test]
    fn no_proxy_matches_like_curl() {
        let n = NoProxy::parse(
            "example.com, .corp.net,10.0.0.0/8 ,192.168.1.7,[::1],svc:8443 fd00::/8",
        );
        for (host, port) in [
            ("example.com", 443),
            ("EXAMPLE.com.", 443),
            ("api.example.com", 443),
            ("corp.net", 1),
            ("a.b.corp.net", 1),
            ("10.1.2.3", 443),
            ("192.168.1.7", 80),
            ("::1", 443),
            ("[::1]", 443),
            ("svc", 8443),
            ("fd00::5", 443),
        ] {
            assert!(n.matches(host, port), "{host}:{port} should bypass");
        }
        for (host, port) in [
            ("notexample.com", 443),
            ("example.com.evil.org", 443),
            ("11.0.0.1", 443),
            ("192.168.1.8", 80),
            ("svc", 443),
            ("127.0.0.1", 443),
        ] {
            assert!(!n.matches(host, port), "{host}:{port} should use the proxy");
        }
        assert!(NoProxy::parse("*").matches("anything", 1));
        assert!(NoProxy::parse("").is_empty());
        assert!(NoProxy::parse("example.com:443").matches("example.com", 443));
        assert!(!NoProxy::parse("example.com:443").matches("example.com", 8443));
    }
}
