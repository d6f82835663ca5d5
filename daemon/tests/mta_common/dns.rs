//! A tiny authoritative DNS server on loopback UDP, for the hickory-backed resolver tests:
//! answers from a list of records, NXDOMAIN for unknown names, SERVFAIL or silence on demand.
//! It never forwards anything.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, MX, PTR, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;

/// What a name answers.
#[derive(Clone, Debug)]
pub enum Answer {
    /// These records (of any types; the server picks those of the type asked).
    Records(Vec<RData>),
    /// SERVFAIL.
    ServFail,
    /// No reply at all (the client times out).
    Silent,
}

/// A running server.
pub struct DnsServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Queries received.
    pub queries: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Shorthands for record data.
pub fn mx(preference: u16, exchange: &str) -> RData {
    RData::MX(MX::new(preference, Name::from_ascii(exchange).unwrap()))
}
/// An A record.
pub fn a(ip: &str) -> RData {
    RData::A(A(ip.parse::<Ipv4Addr>().unwrap()))
}
/// An AAAA record.
pub fn aaaa(ip: &str) -> RData {
    RData::AAAA(AAAA(ip.parse::<Ipv6Addr>().unwrap()))
}
/// A PTR record.
pub fn ptr(name: &str) -> RData {
    RData::PTR(PTR(Name::from_ascii(name).unwrap()))
}
/// A TXT record.
pub fn txt(text: &str) -> RData {
    RData::TXT(TXT::new(vec![text.to_owned()]))
}

impl DnsServer {
    /// Starts a server answering `zone` (names fully qualified, with the trailing dot).
    pub async fn start(zone: Vec<(&str, Answer)>) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let zone: Vec<(Name, Answer)> = zone
            .into_iter()
            .map(|(n, a)| (Name::from_ascii(n).unwrap(), a))
            .collect();
        let queries = Arc::new(AtomicUsize::new(0));
        let counter = queries.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let Ok(request) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                if let Some(response) = respond(&zone, &request) {
                    let bytes = response.to_vec().unwrap();
                    let _ = socket.send_to(&bytes, peer).await;
                }
            }
        });
        DnsServer {
            addr,
            queries,
            task,
        }
    }
}

fn respond(zone: &[(Name, Answer)], request: &Message) -> Option<Message> {
    let query = request.queries.first()?.clone();
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.message_type = MessageType::Response;
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    let found = zone.iter().find(|(name, _)| {
        name.to_ascii()
            .eq_ignore_ascii_case(&query.name().to_ascii())
    });
    match found {
        None => response.metadata.response_code = ResponseCode::NXDomain,
        Some((_, Answer::Silent)) => return None,
        Some((_, Answer::ServFail)) => response.metadata.response_code = ResponseCode::ServFail,
        Some((name, Answer::Records(records))) => {
            for data in records {
                if data.record_type() == query.query_type() || query.query_type() == RecordType::ANY
                {
                    response.add_answer(Record::from_rdata(name.clone(), 60, data.clone()));
                }
            }
        }
    }
    response.add_query(query);
    Some(response)
}
