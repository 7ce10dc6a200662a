# Sends one hand-built IPv4 or IPv6 packet per input line, for the kernel
# oracle suite (tests/kernel_trace.rs). Runs inside a test namespace.
#
# Line: MODE IFACE DSTMAC PROTO SRC DST SPORT DPORT ICMPTYPE ICMPCODE FLAGS SEQ ACK TTL UID
#   MODE "wire":  an Ethernet frame written on IFACE (AF_PACKET), as if it
#                 arrived from another machine;
#   MODE "local": the IP packet handed to this namespace's own stack through
#                 a raw socket bound to SRC, so it is generated locally and
#                 meets OUTPUT and POSTROUTING (IFACE and DSTMAC are "-").
#                 The socket belongs to user UID (for `-m owner`).
#   FLAGS is the TCP flag byte; SEQ and ACK the TCP sequence numbers; TTL
#   the IPv4 TTL or IPv6 hop limit.
# Answers "ok" or "err MESSAGE" per line. A locally generated packet that
# netfilter drops makes the send fail with EPERM: that is an answer too
# ("ok dropped"), the test reads the outcome from the kernel's counters.
import ctypes
import errno
import socket
import struct
import sys


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def transport(proto, sport, dport, itype, icode, flags, seq, ack, ident):
    if proto == 6:
        # Window 64240, no options: 20 bytes.
        return struct.pack(
            "!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0
        )
    if proto == 17:
        return struct.pack("!HHHH", sport, dport, 8, 0)
    if proto in (1, 58):
        return struct.pack("!BBHHH", itype, icode, 0, ident & 0xFFFF, 1)
    return b""


def with_checksum(proto, l4, pseudo):
    """Fills in the transport checksum; ICMPv4 has no pseudo-header."""
    if proto in (6, 17, 58):
        c = csum(pseudo + l4)
        if proto == 17 and c == 0:
            c = 0xFFFF
        off = {6: 16, 17: 6, 58: 2}[proto]
        return l4[:off] + struct.pack("!H", c) + l4[off + 2 :]
    if proto == 1:
        return l4[:2] + struct.pack("!H", csum(l4)) + l4[4:]
    return l4


def ipv4(proto, src, dst, l4, ident, ttl):
    s = socket.inet_pton(socket.AF_INET, src)
    d = socket.inet_pton(socket.AF_INET, dst)
    l4 = with_checksum(proto, l4, s + d + struct.pack("!BBH", 0, proto, len(l4)))
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident & 0xFFFF, 0, ttl, proto, 0, s, d
    )
    return ip[:10] + struct.pack("!H", csum(ip)) + ip[12:] + l4


def ipv6(proto, src, dst, l4, ttl):
    s = socket.inet_pton(socket.AF_INET6, src)
    d = socket.inet_pton(socket.AF_INET6, dst)
    l4 = with_checksum(proto, l4, s + d + struct.pack("!IxxxB", len(l4), proto))
    return struct.pack("!IHBB16s16s", 6 << 28, len(l4), proto, ttl, s, d) + l4


LIBC = ctypes.CDLL(None, use_errno=True)


def owned_raw_socket(family, uid):
    # A socket takes its owner from the file-system user id at creation;
    # changing only that one keeps the capability to open raw sockets.
    LIBC.setfsuid(uid)
    try:
        return socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
    finally:
        LIBC.setfsuid(0)


wire = {}
local = {}
ident = 1
for line in sys.stdin:
    parts = line.split()
    if not parts:
        continue
    try:
        mode, iface, mac, proto, src, dst = parts[:6]
        sport, dport, itype, icode, flags, seq, ack, ttl, uid = (
            int(x) for x in parts[6:15]
        )
        proto = int(proto)
        v6 = ":" in src
        ident += 1
        l4 = transport(proto, sport, dport, itype, icode, flags, seq, ack, ident)
        if v6:
            packet = ipv6(proto, src, dst, l4, ttl)
        else:
            packet = ipv4(proto, src, dst, l4, ident, ttl)
        if mode == "wire":
            if iface not in wire:
                sk = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
                sk.bind((iface, 0))
                wire[iface] = sk
            ethertype = b"\x86\xdd" if v6 else b"\x08\x00"
            head = bytes.fromhex(mac.replace(":", "")) + bytes.fromhex("020000000fff")
            wire[iface].send(head + ethertype + packet)
            print("ok", flush=True)
        elif mode == "local":
            if (src, uid) not in local:
                family = socket.AF_INET6 if v6 else socket.AF_INET
                # IPPROTO_RAW: the packet carries its own IP header.
                sk = owned_raw_socket(family, uid)
                sk.bind((src, 0))
                local[(src, uid)] = sk
            try:
                local[(src, uid)].sendto(packet, (dst, 0))
                print("ok", flush=True)
            except PermissionError:
                print("ok dropped", flush=True)
        else:
            print("err unknown mode %s" % mode, flush=True)
    except OSError as e:
        if e.errno == errno.EPERM:
            print("ok dropped", flush=True)
        else:
            print("err %s" % e, flush=True)
    except Exception as e:  # reported to the test, which fails the case
        print("err %s" % e, flush=True)
