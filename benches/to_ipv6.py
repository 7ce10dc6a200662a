#!/usr/bin/env python3
"""Maps an iptables-save dump to an ip6tables-save one, for the reach bench.

Every IPv4 address a.b.c.d becomes 2001:db8::ab:cd00:0:0 style: its 32 bits
go into bits 64..95 (counted from the top) of 2001:db8::/32, and a prefix /n becomes /(n + 64), so
the structure of the rules (which ranges nest or overlap) is kept. ICMP
matches and reject types become their ICMPv6 forms; `-f` (IPv4 fragments)
is dropped. Reads standard input, writes standard output.
"""
import re
import sys

BASE = 0x20010DB8 << 96


def v6(addr: str) -> str:
    a, b, c, d = (int(x) for x in addr.split("."))
    n = BASE | (((a << 24) | (b << 16) | (c << 8) | d) << 32)
    groups = [(n >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    return ":".join(f"{g:x}" for g in groups)


ADDR = re.compile(r"\b(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(/(\d{1,2}))?\b")


def sub(m: re.Match) -> str:
    out = v6(m.group(1))
    if m.group(3) is not None:
        out += "/" + str(int(m.group(3)) + 64)
    return out


for line in sys.stdin:
    if line.startswith("-A"):
        line = ADDR.sub(sub, line)
        line = re.sub(r"-p icmp\b", "-p ipv6-icmp", line)
        line = re.sub(r"-m icmp --icmp-type", "-m icmp6 --icmpv6-type", line)
        line = re.sub(r"--reject-with icmp-[a-z-]+", "--reject-with icmp6-adm-prohibited", line)
        line = re.sub(r" -f\b", "", line)
    sys.stdout.write(line)
