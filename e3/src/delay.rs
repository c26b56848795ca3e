//! The userspace one-way delay line: holds every packet of an NFQUEUE for a fixed time, then accepts it.
//!
//! This kernel has no `netem` qdisc, so E3 emulates link latency in userspace. An iptables rule
//! such as `-j NFQUEUE --queue-num N --queue-bypass` hands packets to queue `N`; [`run`] binds
//! that queue in the network namespace it runs in and, for each packet, issues the verdict
//! *accept* exactly `one_way` after the packet arrived. The delay is constant, so packets leave in
//! arrival order and a FIFO of packet ids is the whole state.
//!
//! The queue is driven through a raw `NETLINK_NETFILTER` socket (via `rustix`, without `unsafe`)
//! rather than the `nfq` crate, because `nfq::Queue` does not expose its socket: a delay line must
//! sleep until *either* the earliest deadline *or* the next packet, which needs `poll` with a
//! timeout on that socket. Owning the socket also allows:
//! - metadata-only copy mode (the kernel sends no payload; a verdict without payload leaves the
//!   packet untouched), and GSO pass-through (no segmentation or checksumming for userspace);
//! - batch verdicts: one message accepts every queued packet up to an id, which is exactly
//!   "release everything that is due" for a FIFO.
//!
//! If the process dies the kernel drops the packets it held and unbinds the queue; with
//! `--queue-bypass` in the rule, later packets then flow undelayed.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{
    AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, bind, netlink, recv, sendto,
    socket_with, sockopt,
};

/// Netlink message types and flags (`linux/netlink.h`).
const NLMSG_ERROR: u16 = 2;
/// `NLM_F_REQUEST`: the message is a request.
const NLM_F_REQUEST: u16 = 1;
/// `NLM_F_ACK`: ask the kernel to acknowledge the request.
const NLM_F_ACK: u16 = 4;
/// Size of `struct nlmsghdr`.
const NLMSG_HDRLEN: usize = 16;
/// Size of `struct nfgenmsg`, the netfilter header after the netlink header.
const NFGENMSG_LEN: usize = 4;
/// Size of `struct nlattr`.
const NLA_HDRLEN: usize = 4;
/// Bits of `nla_type` that are flags, not the type (`NLA_F_NESTED`, `NLA_F_NET_BYTEORDER`).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// The nfnetlink subsystem of NFQUEUE (`NFNL_SUBSYS_QUEUE`).
const NFNL_SUBSYS_QUEUE: u16 = 3;
/// A queued packet, kernel to userspace (`NFQNL_MSG_PACKET`).
const NFQNL_MSG_PACKET: u16 = 0;
/// Queue configuration (`NFQNL_MSG_CONFIG`).
const NFQNL_MSG_CONFIG: u16 = 2;
/// A verdict on every queued packet up to an id (`NFQNL_MSG_VERDICT_BATCH`).
const NFQNL_MSG_VERDICT_BATCH: u16 = 3;

/// Packet attribute: `struct nfqnl_msg_packet_hdr` (big-endian packet id first).
const NFQA_PACKET_HDR: u16 = 1;
/// Verdict attribute: `struct nfqnl_msg_verdict_hdr { be32 verdict; be32 id; }`.
const NFQA_VERDICT_HDR: u16 = 2;
/// Config attribute: `struct nfqnl_msg_config_cmd`.
const NFQA_CFG_CMD: u16 = 1;
/// Config attribute: `struct nfqnl_msg_config_params` (packed: be32 range, u8 mode).
const NFQA_CFG_PARAMS: u16 = 2;
/// Config attribute: the maximum number of packets the kernel queues (be32).
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
/// Config attribute: which flags `NFQA_CFG_FLAGS` changes (be32).
const NFQA_CFG_MASK: u16 = 4;
/// Config attribute: queue flags (be32).
const NFQA_CFG_FLAGS: u16 = 5;
/// Config command: bind this socket to the queue.
const NFQNL_CFG_CMD_BIND: u8 = 1;
/// Copy mode: send packet metadata only, no payload.
const NFQNL_COPY_META: u8 = 1;
/// Queue flag: hand GSO packets over whole (no segmentation or checksum work for us).
const NFQA_CFG_F_GSO: u32 = 4;
/// The `NF_ACCEPT` verdict.
const NF_ACCEPT: u32 = 1;

/// How many packets the kernel may hold for us; beyond it, new packets are dropped.
/// 100 Mbit/s of 1500-byte packets held for 100 ms is about 830 packets.
const QUEUE_MAX_LEN: u32 = 16_384;
/// Socket receive buffer, so a burst of packet notifications is not lost before we read it.
const RECV_BUFFER_BYTES: usize = 8 << 20;
/// Large enough for any message of a metadata-only queue (and for error replies).
const DATAGRAM_BUFFER_BYTES: usize = 64 << 10;
/// At most this many notifications are read in a row before due packets are released again.
const MAX_DRAIN: usize = 256;

/// Runs the delay line on NFQUEUE `queue` until the process is killed.
///
/// Every packet is accepted `one_way` after it arrived, in arrival order; a zero delay accepts
/// packets as soon as they are read. Returns only on an error: binding the queue failed (not
/// root, wrong namespace, queue already bound) or the netlink socket failed.
pub fn run(queue: u16, one_way: Duration) -> anyhow::Result<()> {
    let mut line = DelayLine::bind(queue, one_way)?;
    eprintln!(
        "e3 delay: NFQUEUE {queue} bound, holding packets {:.3} ms",
        one_way.as_secs_f64() * 1e3
    );
    line.serve()
}

/// One message from the kernel that the delay line cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Incoming {
    /// A packet was queued; it carries the kernel's packet id.
    Packet(u32),
    /// A reply to a request with sequence number `seq`; `errno` 0 is an acknowledgement.
    Ack {
        /// The sequence number of the request answered.
        seq: u32,
        /// 0 on success, else the positive errno the request failed with.
        errno: i32,
    },
}

/// A bound NFQUEUE plus the packets it holds, in arrival order.
#[derive(Debug)]
struct DelayLine {
    /// The `NETLINK_NETFILTER` socket bound to the queue.
    sock: OwnedFd,
    /// The queue number.
    queue: u16,
    /// How long each packet is held.
    one_way: Duration,
    /// Held packets: when each is due, and its id. Deadlines are non-decreasing.
    held: VecDeque<(Instant, u32)>,
    /// Receive buffer for one datagram.
    buf: Vec<u8>,
    /// Messages parsed from the last datagram.
    incoming: Vec<Incoming>,
}

impl DelayLine {
    /// Opens a netfilter netlink socket and binds it to `queue`, metadata-only, GSO allowed.
    fn bind(queue: u16, one_way: Duration) -> anyhow::Result<Self> {
        let hint = "(are you root, in the right network namespace?)";
        let sock = socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            Some(netlink::NETFILTER),
        )
        .map_err(std::io::Error::from)
        .with_context(|| format!("cannot open a netfilter netlink socket for NFQUEUE {queue}"))?;
        bind(&sock, &SocketAddrNetlink::new(0, 0))
            .map_err(std::io::Error::from)
            .with_context(|| format!("cannot bind a netlink socket for NFQUEUE {queue} {hint}"))?;
        // Best effort: the forced size needs CAP_NET_ADMIN, the plain one is capped by rmem_max.
        if sockopt::set_socket_recv_buffer_size_force(&sock, RECV_BUFFER_BYTES).is_err() {
            let _ = sockopt::set_socket_recv_buffer_size(&sock, RECV_BUFFER_BYTES);
        }
        let mut line = Self {
            sock,
            queue,
            one_way,
            held: VecDeque::new(),
            buf: vec![0; DATAGRAM_BUFFER_BYTES],
            incoming: Vec::new(),
        };
        // One request binds and configures atomically: the kernel applies the command first.
        let seq = 1;
        let config = config_request(queue, seq);
        line.send(&config)
            .with_context(|| format!("cannot bind NFQUEUE {queue} {hint}"))?;
        match line.await_ack(seq) {
            Ok(()) => Ok(line),
            Err(err) => {
                // The kernel answers EPERM both to a missing CAP_NET_ADMIN and to a queue that
                // another socket holds; the queue table tells them apart.
                let why = if err == Errno::PERM && queue_is_bound(queue) {
                    "(another process is already bound to it)"
                } else {
                    hint
                };
                bail!(
                    "cannot bind NFQUEUE {queue}: {} {why}",
                    std::io::Error::from(err)
                )
            }
        }
    }

    /// Waits for the kernel's reply to request `seq`, holding any packets that arrive meanwhile.
    fn await_ack(&mut self, seq: u32) -> Result<(), Errno> {
        loop {
            self.recv_datagram(RecvFlags::empty())?;
            let mut reply = None;
            for i in 0..self.incoming.len() {
                match self.incoming[i] {
                    Incoming::Packet(id) => self.hold(id, Instant::now()),
                    Incoming::Ack { seq: s, errno } if s == seq => reply = Some(errno),
                    Incoming::Ack { .. } => {}
                }
            }
            match reply {
                Some(0) => return Ok(()),
                Some(errno) => return Err(Errno::from_raw_os_error(errno)),
                None => {}
            }
        }
    }

    /// The delay line proper: release what is due, then sleep until the next deadline or packet.
    fn serve(&mut self) -> anyhow::Result<()> {
        loop {
            let now = Instant::now();
            let mut last_due = None;
            while let Some(&(due, id)) = self.held.front()
                && due <= now
            {
                last_due = Some(id);
                self.held.pop_front();
            }
            if let Some(id) = last_due {
                self.send(&verdict_batch(self.queue, id))
                    .with_context(|| format!("cannot send a verdict to NFQUEUE {}", self.queue))?;
            }
            let timeout = self
                .held
                .front()
                .map(|&(due, _)| due.saturating_duration_since(now));
            if self.wait_readable(timeout)? {
                self.drain()?;
            }
        }
    }

    /// Blocks until the socket is readable (`true`) or `timeout` passes (`false`); `None` waits
    /// indefinitely.
    fn wait_readable(&self, timeout: Option<Duration>) -> anyhow::Result<bool> {
        let timeout = timeout
            .map(Timespec::try_from)
            .transpose()
            .context("delay deadline out of range")?;
        let mut fds = [PollFd::new(&self.sock, PollFlags::IN)];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(n) => Ok(n > 0),
            Err(Errno::INTR) => Ok(false),
            Err(err) => Err(std::io::Error::from(err))
                .with_context(|| format!("cannot poll NFQUEUE {}", self.queue)),
        }
    }

    /// Reads every pending notification (up to [`MAX_DRAIN`]) without blocking and holds the
    /// packets they announce.
    fn drain(&mut self) -> anyhow::Result<()> {
        for _ in 0..MAX_DRAIN {
            match self.recv_datagram(RecvFlags::DONTWAIT) {
                Ok(()) => {}
                Err(Errno::AGAIN | Errno::INTR) => return Ok(()),
                Err(Errno::NOBUFS) => {
                    // The kernel could not deliver some notifications and dropped those packets.
                    eprintln!(
                        "e3 delay: NFQUEUE {}: receive buffer overrun, packets were dropped",
                        self.queue
                    );
                    continue;
                }
                Err(err) => {
                    return Err(std::io::Error::from(err))
                        .with_context(|| format!("cannot read from NFQUEUE {}", self.queue));
                }
            }
            let arrival = Instant::now();
            for i in 0..self.incoming.len() {
                match self.incoming[i] {
                    Incoming::Packet(id) => self.hold(id, arrival),
                    // Verdicts are sent without NLM_F_ACK, so any reply is a failed one: the
                    // packets were already gone (e.g. their interface was deleted).
                    Incoming::Ack { errno, .. } if errno != 0 => eprintln!(
                        "e3 delay: NFQUEUE {}: a verdict was refused: {}",
                        self.queue,
                        std::io::Error::from_raw_os_error(errno)
                    ),
                    Incoming::Ack { .. } => {}
                }
            }
        }
        Ok(())
    }

    /// Holds packet `id`, which arrived at `arrival`.
    fn hold(&mut self, id: u32, arrival: Instant) {
        self.held.push_back((arrival + self.one_way, id));
    }

    /// Receives one datagram and parses it into `self.incoming`.
    fn recv_datagram(&mut self, flags: RecvFlags) -> Result<(), Errno> {
        let (_, len) = recv(&self.sock, &mut self.buf[..], flags | RecvFlags::TRUNC)?;
        if len > self.buf.len() {
            // Cannot happen in metadata-only mode; never misparse a truncated message.
            return Err(Errno::MSGSIZE);
        }
        self.incoming.clear();
        parse_datagram(&self.buf[..len], &mut self.incoming);
        Ok(())
    }

    /// Sends one netlink request to the kernel.
    fn send(&self, msg: &[u8]) -> anyhow::Result<()> {
        let sent = sendto(
            &self.sock,
            msg,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )
        .map_err(std::io::Error::from)?;
        if sent != msg.len() {
            bail!("short netlink send ({sent} of {} bytes)", msg.len());
        }
        Ok(())
    }
}

/// Whether `/proc/net/netfilter/nfnetlink_queue` (of this network namespace) lists `queue`.
fn queue_is_bound(queue: u16) -> bool {
    std::fs::read_to_string("/proc/self/net/netfilter/nfnetlink_queue").is_ok_and(|table| {
        table
            .lines()
            .any(|line| line.split_whitespace().next() == Some(queue.to_string().as_str()))
    })
}

/// Builds the request that binds `queue`, sets metadata-only copy mode, a long queue and GSO.
fn config_request(queue: u16, seq: u32) -> Vec<u8> {
    let mut msg = nfnl_header(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, queue, seq);
    // struct nfqnl_msg_config_cmd { u8 command; u8 _pad; be16 pf; }
    put_attr(&mut msg, NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0]);
    // struct nfqnl_msg_config_params { be32 copy_range; u8 copy_mode; } (packed)
    let mut params = 0u32.to_be_bytes().to_vec();
    params.push(NFQNL_COPY_META);
    put_attr(&mut msg, NFQA_CFG_PARAMS, &params);
    put_attr(
        &mut msg,
        NFQA_CFG_QUEUE_MAXLEN,
        &QUEUE_MAX_LEN.to_be_bytes(),
    );
    put_attr(&mut msg, NFQA_CFG_MASK, &NFQA_CFG_F_GSO.to_be_bytes());
    put_attr(&mut msg, NFQA_CFG_FLAGS, &NFQA_CFG_F_GSO.to_be_bytes());
    finish(msg)
}

/// Builds the verdict accepting every packet of `queue` with an id up to `last_id`.
fn verdict_batch(queue: u16, last_id: u32) -> Vec<u8> {
    let mut msg = nfnl_header(NFQNL_MSG_VERDICT_BATCH, NLM_F_REQUEST, queue, 0);
    let mut hdr = NF_ACCEPT.to_be_bytes().to_vec();
    hdr.extend_from_slice(&last_id.to_be_bytes());
    put_attr(&mut msg, NFQA_VERDICT_HDR, &hdr);
    finish(msg)
}

/// Starts an NFQUEUE message: `nlmsghdr` (length filled in by [`finish`]) and `nfgenmsg`.
fn nfnl_header(kind: u16, flags: u16, queue: u16, seq: u32) -> Vec<u8> {
    let mut msg = Vec::with_capacity(64);
    msg.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len
    msg.extend_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | kind).to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel
    // struct nfgenmsg { u8 nfgen_family; u8 version; be16 res_id; }
    msg.extend_from_slice(&[0, 0]);
    msg.extend_from_slice(&queue.to_be_bytes());
    msg
}

/// Appends a netlink attribute, padded to 4 bytes.
fn put_attr(msg: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = u16::try_from(NLA_HDRLEN + payload.len()).unwrap_or(u16::MAX);
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(payload);
    msg.resize(align4(msg.len()), 0);
}

/// Writes the total length into the `nlmsghdr`.
fn finish(mut msg: Vec<u8>) -> Vec<u8> {
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    msg[..4].copy_from_slice(&len.to_ne_bytes());
    msg
}

/// Rounds up to the netlink alignment of 4 bytes.
fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Reads a native-endian `u16` at `at`.
fn ne_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Reads a native-endian `u32` at `at`.
fn ne_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses the netlink messages in one datagram, appending those of interest to `out`.
/// Malformed trailing data is ignored.
fn parse_datagram(data: &[u8], out: &mut Vec<Incoming>) {
    let mut off = 0;
    while let (Some(len), Some(kind), Some(seq)) = (
        ne_u32(data, off),
        ne_u16(data, off + 4),
        ne_u32(data, off + 8),
    ) {
        let len = len as usize;
        if len < NLMSG_HDRLEN {
            return;
        }
        let Some(body) = data.get(off + NLMSG_HDRLEN..off + len) else {
            return;
        };
        if kind == NLMSG_ERROR {
            // struct nlmsgerr { int error; struct nlmsghdr msg; ... }: error is -errno or 0.
            if let Some(error) = ne_u32(body, 0) {
                let errno = (error.cast_signed()).saturating_neg();
                out.push(Incoming::Ack { seq, errno });
            }
        } else if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET
            && let Some(id) = packet_id(body.get(NFGENMSG_LEN..).unwrap_or_default())
        {
            out.push(Incoming::Packet(id));
        }
        off += align4(len);
    }
}

/// Finds the packet id in the attributes of an `NFQNL_MSG_PACKET`.
fn packet_id(mut attrs: &[u8]) -> Option<u32> {
    while let (Some(len), Some(kind)) = (ne_u16(attrs, 0), ne_u16(attrs, 2)) {
        let len = usize::from(len);
        let payload = attrs.get(NLA_HDRLEN..len)?;
        if kind & NLA_TYPE_MASK == NFQA_PACKET_HDR {
            return Some(u32::from_be_bytes(payload.get(..4)?.try_into().ok()?));
        }
        attrs = attrs.get(align4(len)..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet notification as the kernel sends it, for `id`, with an unrelated attribute first.
    fn packet_message(id: u32) -> Vec<u8> {
        let mut msg = nfnl_header(NFQNL_MSG_PACKET, 0, 7, 0);
        put_attr(&mut msg, 5, &3u32.to_be_bytes()); // NFQA_IFINDEX_INDEV
        let mut hdr = id.to_be_bytes().to_vec();
        hdr.extend_from_slice(&0x0800u16.to_be_bytes());
        hdr.push(1);
        put_attr(&mut msg, NFQA_PACKET_HDR, &hdr);
        finish(msg)
    }

    #[test]
    fn parses_packets_and_acks_in_one_datagram() {
        let mut data = packet_message(41);
        data.extend(packet_message(0xdead_beef));
        let mut ack = Vec::new();
        ack.extend_from_slice(&36u32.to_ne_bytes());
        ack.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        ack.extend_from_slice(&0u16.to_ne_bytes());
        ack.extend_from_slice(&9u32.to_ne_bytes());
        ack.extend_from_slice(&0u32.to_ne_bytes());
        ack.extend_from_slice(&(-16i32).to_ne_bytes());
        ack.extend_from_slice(&[0; 16]);
        data.extend(ack);
        let mut out = Vec::new();
        parse_datagram(&data, &mut out);
        assert_eq!(
            out,
            [
                Incoming::Packet(41),
                Incoming::Packet(0xdead_beef),
                Incoming::Ack { seq: 9, errno: 16 }
            ]
        );
    }

    #[test]
    fn ignores_truncated_data() {
        let data = packet_message(5);
        let mut out = Vec::new();
        parse_datagram(&data[..data.len() - 3], &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn verdict_layout() {
        let msg = verdict_batch(0x0102, 0x0a0b_0c0d);
        assert_eq!(msg.len(), 32);
        assert_eq!(ne_u32(&msg, 0), Some(32));
        assert_eq!(ne_u16(&msg, 4), Some((3 << 8) | 3));
        assert_eq!(&msg[18..20], &[1, 2]);
        assert_eq!(ne_u16(&msg, 20), Some(12));
        assert_eq!(ne_u16(&msg, 22), Some(NFQA_VERDICT_HDR));
        assert_eq!(&msg[24..32], &[0, 0, 0, 1, 10, 11, 12, 13]);
    }
}
