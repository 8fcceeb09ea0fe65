//! Message ids: the client-side UNIQ_KEY ([`UniqIdGenerator`]) and the broker's offset msgId
//! ([`OffsetMessageId`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use crate::error::{DecodeError, cut};
use crate::text::{INLINE_ID, MsgId};

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn push_hex(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        out.push(HEX_UPPER[(b >> 4) as usize] as char);
        out.push(HEX_UPPER[(b & 15) as usize] as char);
    }
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn ip_from(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|a| IpAddr::V6(Ipv6Addr::from(a))),
        _ => None,
    }
}

/// Generates client message ids (`UNIQ_KEY`) in Java's layout, upper-case hex:
///
/// ```text
/// ip (4 or 16 bytes) | pid (2) | instance hash (4) | ms since the month began (4) | counter (2)
/// ```
///
/// The first part is fixed per generator. Each id costs one atomic increment and the caller's clock read
/// (time is passed in; this crate reads no clock). Ids from many threads are distinct as long as fewer
/// than 65536 are made in the same millisecond by one generator. Java starts the month in the JVM's time
/// zone; this generator uses UTC, which only shifts the time field, not uniqueness.
///
/// ```
/// use rmq_protocol::UniqIdGenerator;
/// let g = UniqIdGenerator::new("192.168.0.1".parse().unwrap(), 12345, 0x12345678);
/// let id = g.next_id(1_700_000_000_000);
/// assert_eq!(id.len(), 32);
/// assert!(id.starts_with("C0A80001303912345678"));
/// ```
#[derive(Debug)]
pub struct UniqIdGenerator {
    prefix: String,
    counter: AtomicU32,
    month_start: AtomicI64,
    next_month_start: AtomicI64,
}

impl UniqIdGenerator {
    /// A generator for a process at `ip` with process id `pid` (truncated to 16 bits, as Java does) and an
    /// `instance_hash` telling apart generators of one process.
    pub fn new(ip: IpAddr, pid: u32, instance_hash: u32) -> Self {
        let mut fixed = ip_bytes(ip);
        fixed.extend_from_slice(&(pid as u16).to_be_bytes());
        fixed.extend_from_slice(&instance_hash.to_be_bytes());
        let mut prefix = String::with_capacity(fixed.len() * 2);
        push_hex(&mut prefix, &fixed);
        UniqIdGenerator {
            prefix,
            counter: AtomicU32::new(0),
            month_start: AtomicI64::new(i64::MAX),
            next_month_start: AtomicI64::new(i64::MIN),
        }
    }

    /// The fixed hex prefix (ip, pid, instance hash).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A new id for the time `now_ms` (ms since the Unix epoch). Does not allocate.
    pub fn next_id(&self, now_ms: i64) -> MsgId {
        let mut bytes = [0u8; INLINE_ID];
        let p = self.prefix.len();
        bytes[..p].copy_from_slice(self.prefix.as_bytes());
        let tail = self.next_tail(now_ms);
        for (i, b) in tail.iter().enumerate() {
            bytes[p + 2 * i] = HEX_UPPER[usize::from(b >> 4)];
            bytes[p + 2 * i + 1] = HEX_UPPER[usize::from(b & 15)];
        }
        MsgId::from_inline(bytes, p + 12)
    }

    /// Appends a new id for the time `now_ms` to `out`.
    pub fn write_next(&self, now_ms: i64, out: &mut String) {
        let tail = self.next_tail(now_ms);
        out.push_str(&self.prefix);
        push_hex(out, &tail);
    }

    /// The varying part of the next id: time since the month began (4 bytes) and the counter (2).
    fn next_tail(&self, now_ms: i64) -> [u8; 6] {
        let mut start = self.month_start.load(Ordering::Relaxed);
        if now_ms < start || now_ms >= self.next_month_start.load(Ordering::Relaxed) {
            let (s, next) = month_bounds_utc(now_ms);
            self.month_start.store(s, Ordering::Relaxed);
            self.next_month_start.store(next, Ordering::Relaxed);
            start = s;
        }
        let mut diff = now_ms - start;
        if diff < 0 && diff > -1_000_000 {
            diff = 0;
        }
        let count = self.counter.fetch_add(1, Ordering::Relaxed) as u16;
        let [t0, t1, t2, t3] = (diff as i32).to_be_bytes();
        let [c0, c1] = count.to_be_bytes();
        [t0, t1, t2, t3, c0, c1]
    }
}

/// The parts of a UNIQ_KEY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UniqIdParts {
    /// The producer's address.
    pub ip: IpAddr,
    /// Its process id (low 16 bits).
    pub pid: u16,
    /// The instance hash.
    pub instance_hash: u32,
    /// Milliseconds since the month began when the id was made.
    pub time_diff: i32,
    /// The counter.
    pub counter: u16,
}

impl UniqIdParts {
    /// Parses a 32- or 56-character UNIQ_KEY.
    pub fn parse(id: &str) -> Result<Self, DecodeError> {
        let err = |reason| DecodeError::InvalidMessageId {
            id: cut(id),
            reason,
        };
        let b = parse_hex(id).ok_or_else(|| err("not hex"))?;
        let ip_len = match b.len() {
            16 => 4,
            28 => 16,
            _ => return Err(err("a UNIQ_KEY has 32 or 56 hex characters")),
        };
        let ip = ip_from(&b[..ip_len]).ok_or_else(|| err("bad address"))?;
        let rest = &b[ip_len..];
        Ok(UniqIdParts {
            ip,
            pid: u16::from_be_bytes([rest[0], rest[1]]),
            instance_hash: u32::from_be_bytes([rest[2], rest[3], rest[4], rest[5]]),
            time_diff: i32::from_be_bytes([rest[6], rest[7], rest[8], rest[9]]),
            counter: u16::from_be_bytes([rest[10], rest[11]]),
        })
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil year and month of a day count.
fn civil_from_days(z: i64) -> (i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m)
}

/// Start of the UTC month containing `ms`, and the start of the next one.
fn month_bounds_utc(ms: i64) -> (i64, i64) {
    const DAY: i64 = 86_400_000;
    let (y, m) = civil_from_days(ms.div_euclid(DAY));
    let start = days_from_civil(y, m, 1) * DAY;
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (start, days_from_civil(ny, nm, 1) * DAY)
}

/// The broker's offset msgId: store host address and commit-log offset, upper-case hex
/// (`MessageDecoder.createMessageId`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OffsetMessageId {
    /// The storing broker's address.
    pub addr: SocketAddr,
    /// Physical offset in its commit log.
    pub offset: i64,
}

impl OffsetMessageId {
    /// The id text: 32 characters for IPv4, 56 for IPv6.
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(56);
        push_hex(&mut s, &ip_bytes(self.addr.ip()));
        push_hex(&mut s, &i32::from(self.addr.port()).to_be_bytes());
        push_hex(&mut s, &self.offset.to_be_bytes());
        s
    }

    /// Parses an id: 32 hex characters as IPv4, 56 as IPv6.
    pub fn decode(id: &str) -> Result<Self, DecodeError> {
        let err = |reason| DecodeError::InvalidMessageId {
            id: cut(id),
            reason,
        };
        let b = parse_hex(id).ok_or_else(|| err("not hex"))?;
        let ip_len = match b.len() {
            16 => 4,
            28 => 16,
            _ => return Err(err("an offset msgId has 32 or 56 hex characters")),
        };
        let ip = ip_from(&b[..ip_len]).ok_or_else(|| err("bad address"))?;
        let port = i32::from_be_bytes([b[ip_len], b[ip_len + 1], b[ip_len + 2], b[ip_len + 3]]);
        let port = u16::try_from(port).map_err(|_| err("port out of range"))?;
        let mut off = [0u8; 8];
        off.copy_from_slice(&b[ip_len + 4..]);
        Ok(OffsetMessageId {
            addr: SocketAddr::new(ip, port),
            offset: i64::from_be_bytes(off),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_msg_id_java_vectors() {
        let id = OffsetMessageId {
            addr: "127.0.0.1:10911".parse().unwrap(),
            offset: 123_456,
        };
        assert_eq!(id.encode(), "7F00000100002A9F000000000001E240");
        assert_eq!(OffsetMessageId::decode(&id.encode()).unwrap(), id);

        let v4 = OffsetMessageId::decode("645100FA00002A9F000000489A3AA09E").unwrap();
        assert_eq!(v4.addr, "100.81.0.250:10911".parse().unwrap());
        assert_eq!(v4.offset, 311_825_178_782);

        let v6 =
            OffsetMessageId::decode("24084004018081003FAA1DDE2B3F898A00002A9F0000000000000CA0")
                .unwrap();
        assert_eq!(
            v6.addr,
            "[2408:4004:180:8100:3faa:1dde:2b3f:898a]:10911"
                .parse()
                .unwrap()
        );
        assert_eq!(v6.offset, 3232);
        assert_eq!(
            v6.encode(),
            "24084004018081003FAA1DDE2B3F898A00002A9F0000000000000CA0"
        );
    }

    #[test]
    fn offset_msg_id_errors() {
        for bad in [
            "",
            "7F",
            "ZZ00000100002A9F000000000001E240",
            "7F000001FFFFFFFF000000000001E240",
            "é",
        ] {
            assert!(OffsetMessageId::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uniq_id_derived_vector() {
        // derived_vectors.txt: ip 192.168.0.1, pid 12345, hash 0x12345678, diff 0x00112233, counter 1.
        let g = UniqIdGenerator::new("192.168.0.1".parse().unwrap(), 12345, 0x1234_5678);
        let (start, _) = month_bounds_utc(1_700_000_000_000);
        let now = start + 0x0011_2233;
        let _ = g.next_id(now); // counter 0
        assert_eq!(g.next_id(now), "C0A80001303912345678001122330001");
        let p = UniqIdParts::parse("C0A80001303912345678001122330001").unwrap();
        assert_eq!(p.pid, 12345);
        assert_eq!(p.time_diff, 0x0011_2233);
        assert_eq!(p.counter, 1);
    }

    #[test]
    fn next_id_is_write_next() {
        let g = UniqIdGenerator::new("10.0.0.1".parse().unwrap(), 1, 2);
        let mut s = String::new();
        let (start, _) = month_bounds_utc(1_700_000_000_000);
        g.write_next(start + 5, &mut s);
        assert_eq!(g.next_id(start + 5), format!("{}0001", &s[..28]));
    }

    #[test]
    fn uniq_id_ipv6_and_counter_steps() {
        let g = UniqIdGenerator::new("::1".parse().unwrap(), 70_000, 7);
        let a = g.next_id(1_700_000_000_000);
        let b = g.next_id(1_700_000_000_000);
        assert_eq!(a.len(), 56);
        let (pa, pb) = (
            UniqIdParts::parse(&a).unwrap(),
            UniqIdParts::parse(&b).unwrap(),
        );
        assert_eq!(pa.pid, 70_000u32 as u16);
        assert_eq!(pb.counter, pa.counter + 1);
    }

    #[test]
    fn month_bounds() {
        // 2023-11-14T22:13:20Z -> 2023-11-01 and 2023-12-01
        assert_eq!(
            month_bounds_utc(1_700_000_000_000),
            (1_698_796_800_000, 1_701_388_800_000)
        );
        // 2024-02-29 -> Feb 2024 (leap year), next is 2024-03-01
        assert_eq!(
            month_bounds_utc(1_709_208_000_000),
            (1_706_745_600_000, 1_709_251_200_000)
        );
        // December rolls into the next year
        assert_eq!(month_bounds_utc(1_703_980_800_000).1, 1_704_067_200_000);
    }

    #[test]
    fn unique_across_threads() {
        let g = std::sync::Arc::new(UniqIdGenerator::new("10.0.0.1".parse().unwrap(), 1, 2));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || {
                    (0..10_000)
                        .map(|_| g.next_id(1_700_000_000_000))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for h in handles {
            for id in h.join().unwrap() {
                assert!(all.insert(id));
            }
        }
        assert_eq!(all.len(), 40_000);
    }
}
