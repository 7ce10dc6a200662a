# Sends one hand-built IPv4 frame per input line on a named interface, from
# inside the peer namespace of the kernel oracle suite (tests/kernel_trace.rs).
# Line: IFACE DSTMAC PROTO SRC DST SPORT DPORT ICMPTYPE ICMPCODE
# Answers "ok" or "err MESSAGE" per line.
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


def frame(mac, proto, src, dst, sport, dport, itype, icode, ident):
    s = socket.inet_aton(src)
    d = socket.inet_aton(dst)
    if proto == 6:
        # SYN, window 64240, no options: 20 bytes.
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1000 + ident, 0, 5 << 4, 0x02, 64240, 0, 0)
    elif proto == 17:
        l4 = struct.pack("!HHHH", sport, dport, 8, 0)
    elif proto == 1:
        l4 = struct.pack("!BBHHH", itype, icode, 0, ident & 0xFFFF, 1)
    else:
        l4 = b""
    if proto in (6, 17):
        pseudo = s + d + struct.pack("!BBH", 0, proto, len(l4))
        c = csum(pseudo + l4)
        if proto == 17 and c == 0:
            c = 0xFFFF
        off = 16 if proto == 6 else 6
        l4 = l4[:off] + struct.pack("!H", c) + l4[off + 2:]
    elif proto == 1:
        l4 = l4[:2] + struct.pack("!H", csum(l4)) + l4[4:]
    total = 20 + len(l4)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident & 0xFFFF, 0, 64, proto, 0, s, d)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    eth = bytes.fromhex(mac.replace(":", "")) + bytes.fromhex("020000000fff") + b"\x08\x00"
    return eth + ip + l4


socks = {}
ident = 1
for line in sys.stdin:
    parts = line.split()
    if not parts:
        continue
    try:
        iface, mac, proto, src, dst, sport, dport, itype, icode = parts
        if iface not in socks:
            sk = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            sk.bind((iface, 0))
            socks[iface] = sk
        ident += 1
        socks[iface].send(
            frame(mac, int(proto), src, dst, int(sport), int(dport), int(itype), int(icode), ident)
        )
        print("ok", flush=True)
    except Exception as e:  # reported to the test, which fails the case
        print("err %s" % e, flush=True)
