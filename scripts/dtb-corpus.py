#!/usr/bin/python3
"""Independent reader for the device tree corpus test.

Reads each blob with python3-libfdt (Debian's binding of dtc's libfdt) and
prints, in the line format of Tools/hv-dtb-corpus, what the platform layer
must find: RAM banks, reservations, the console, every SMMUv3, every PCI host
bridge. It shares no code with the Swift parser; the rules it applies are the
Devicetree Specification's and the Linux bindings' (see each function).

  dtb-corpus.py ROOT FILE...
  dtb-corpus.py --compare PLATFORM_OUTPUT REFERENCE_OUTPUT BOARD_COUNT

Uses only libfdt's walking primitives (properties are read by iterating a
node's property offsets: Debian's 1.6.1 binding mishandles getprop of a
missing property under Python 3.11).
"""
import os
import sys

import libfdt


class Rejected(Exception):
    def __init__(self, node, prop):
        super().__init__(node, prop)
        self.node, self.prop = node, prop


class Blob:
    def __init__(self, data):
        self.fdt = libfdt.Fdt(data)
        self._props = {}

    def props(self, node):
        if node not in self._props:
            found = {}
            offset = self.fdt.first_property_offset(node, quiet=(libfdt.NOTFOUND,))
            while offset >= 0:
                prop = self.fdt.get_property_by_offset(offset)
                found.setdefault(prop.name, bytes(prop))
                offset = self.fdt.next_property_offset(offset, quiet=(libfdt.NOTFOUND,))
            self._props[node] = found
        return self._props[node]

    def prop(self, node, name):
        return self.props(node).get(name)

    def parent(self, node):
        return None if node == 0 else self.fdt.parent_offset(node)

    def path(self, node):
        parts = []
        while node != 0:
            parts.append(self.fdt.get_name(node))
            node = self.fdt.parent_offset(node)
        return "/" + "/".join(reversed(parts))

    def nodes(self):
        node, depth = 0, 0
        while depth >= 0:
            yield node
            try:
                node, depth = self.fdt.next_node(node, depth)
            except libfdt.FdtException:
                return

    def children(self, node):
        child = self.fdt.first_subnode(node, quiet=(libfdt.NOTFOUND,))
        while child >= 0:
            yield child
            child = self.fdt.next_subnode(child, quiet=(libfdt.NOTFOUND,))

    def u32(self, node, name, default=None):
        value = self.prop(node, name)
        if value is None:
            return default
        if len(value) != 4:
            raise Rejected(node, name)
        return int.from_bytes(value, "big")

    def string(self, node, name):
        value = self.prop(node, name)
        if value is None:
            return None
        if not value.endswith(b"\0"):
            raise Rejected(node, name)
        return value.split(b"\0")[0].decode("latin-1")

    def strings(self, node, name):
        value = self.prop(node, name)
        if not value or not value.endswith(b"\0"):
            return []
        return [s.decode("latin-1") for s in value[:-1].split(b"\0")]

    def compatible(self, node, *names):
        return any(n in self.strings(node, "compatible") for n in names)

    def enabled(self, node):
        # DT spec 2.3.4
        value = self.prop(node, "status")
        if value is None:
            return True
        return value in (b"okay\0", b"ok\0")

    def phandle(self, node):
        for name in ("phandle", "linux,phandle"):
            value = self.prop(node, name)
            if value is not None:
                if len(value) != 4:
                    raise Rejected(node, name)
                return int.from_bytes(value, "big")
        return None

    def by_phandle(self, handle):
        for node in self.nodes():
            for name in ("phandle", "linux,phandle"):
                value = self.prop(node, name)
                if value is not None and len(value) == 4 and int.from_bytes(value, "big") == handle:
                    return node
        return None

    # DT spec 2.3.5: defaults 2 and 1.
    def address_cells(self, node):
        return self.u32(node, "#address-cells", 2)

    def size_cells(self, node):
        return self.u32(node, "#size-cells", 1)


def number(data, offset, cells):
    return int.from_bytes(data[offset:offset + 4 * cells], "big")


def reg_entries(blob, node, bus):
    """DT spec 2.3.6: (address, length) tuples in the parent bus's cells."""
    value = blob.prop(node, "reg")
    if value is None:
        return None
    ac, sc = blob.address_cells(bus), blob.size_cells(bus)
    if not 1 <= ac <= 2:
        raise Rejected(node, "#address-cells")
    if sc > 2:
        raise Rejected(node, "#size-cells")
    tuple_bytes = 4 * (ac + sc)
    if len(value) % tuple_bytes:
        raise Rejected(node, "reg")
    entries = []
    for offset in range(0, len(value), tuple_bytes):
        base, size = number(value, offset, ac), number(value, offset + 4 * ac, sc)
        if base + size > 1 << 64:
            raise Rejected(node, "reg")
        entries.append((base, size))
    return entries


def translate(blob, node, base, size):
    """DT spec 2.3.8: through the `ranges` of every bus above `node`."""
    bus = blob.parent(node)
    while bus is not None and bus != 0:
        above = blob.parent(bus)
        ranges = blob.prop(bus, "ranges")
        if ranges is None:
            raise Rejected(bus, "ranges")
        if ranges:
            cc, pc, sc = blob.address_cells(bus), blob.address_cells(above), blob.size_cells(bus)
            if not 1 <= cc <= 2:
                raise Rejected(bus, "#address-cells")
            if not 1 <= pc <= 2:
                raise Rejected(above, "#address-cells")
            if not 1 <= sc <= 2:
                raise Rejected(bus, "#size-cells")
            tuple_bytes = 4 * (cc + pc + sc)
            if len(ranges) % tuple_bytes:
                raise Rejected(bus, "ranges")
            for offset in range(0, len(ranges), tuple_bytes):
                child = number(ranges, offset, cc)
                parent = number(ranges, offset + 4 * cc, pc)
                length = number(ranges, offset + 4 * (cc + pc), sc)
                if child <= base and base + size <= child + length:
                    base = parent + base - child
                    if base + size > 1 << 64:
                        raise Rejected(bus, "ranges")
                    break
            else:
                raise Rejected(bus, "ranges")
        bus = above
    return base, size


def first_cpu_range(blob, node):
    entries = reg_entries(blob, node, blob.parent(node))
    if not entries:
        raise Rejected(node, "reg")
    return translate(blob, node, *entries[0])


def console(blob):
    """`/chosen/stdout-path` (DT spec 3.6), an alias or a path, options after
    ':'; without it the `serial0` alias."""
    chosen = blob.fdt.path_offset("/chosen", quiet=(libfdt.NOTFOUND,))
    spec = None
    if chosen >= 0:
        for name in ("stdout-path", "linux,stdout-path"):
            if blob.prop(chosen, name) is not None:
                spec = blob.string(chosen, name)
                break
    if spec is not None:
        path, source = spec.split(":")[0], "stdout-path"
        node = blob.fdt.path_offset(path, quiet=(libfdt.NOTFOUND, libfdt.BADPATH))
        if node < 0:
            raise Rejected(chosen, "stdout-path")
    else:
        alias = blob.fdt.get_alias("serial0")
        if alias is None:
            return "console none"
        node, source = blob.fdt.path_offset(alias, quiet=(libfdt.NOTFOUND, libfdt.BADPATH)), "serial0"
        if node < 0:
            return "console none"
    base, size = first_cpu_range(blob, node)
    # Linux bindings: arm,pl011.yaml / SBSA generic UART; serial/8250.yaml,
    # snps-dw-apb-uart.yaml (reg-shift, reg-io-width default 0 and 1);
    # brcm,bcm2835-aux-uart.yaml (32-bit registers 4 bytes apart).
    if blob.compatible(node, "arm,pl011", "arm,sbsa-uart"):
        kind = "pl011"
    else:
        if blob.compatible(node, "brcm,bcm2835-aux-uart"):
            shift, width = 2, 4
        elif blob.compatible(node, "ns16550a", "ns16550", "snps,dw-apb-uart"):
            shift, width = 0, 1
        else:
            shift = None
        if shift is None:
            kind = "unsupported"
        else:
            shift = blob.u32(node, "reg-shift", shift)
            width = blob.u32(node, "reg-io-width", width)
            if shift > 5 or width not in (1, 2, 4):
                raise Rejected(node, "reg-io-width")
            kind = "ns16550 shift=%d width=%d" % (shift, width)
    return "console %s %s %s %s %s" % (blob.path(node), hex(base), hex(size), kind, source)


GIC = ("arm,gic-v3", "arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a9-gic", "arm,cortex-a7-gic",
       "arm,pl390", "qcom,msm-qgic2")


def interrupt_parent(blob, node):
    """DT spec 2.4.1, walked as Linux's of_irq_find_parent does."""
    for _ in range(33):
        handle = blob.prop(node, "interrupt-parent")
        if handle is not None:
            if len(handle) != 4:
                return None
            node = blob.by_phandle(int.from_bytes(handle, "big"))
        else:
            node = blob.parent(node)
        if node is None:
            return None
        if blob.prop(node, "#interrupt-cells") is not None:
            return node
    return None


def smmu_interrupts(blob, node):
    """arm,smmu-v3.yaml: interrupts by interrupt-names; GIC specifiers
    (type 0 SPI -> INTID 32 + n, 1 PPI -> 16 + n)."""
    found = {}
    names = blob.strings(node, "interrupt-names") if blob.prop(node, "interrupt-names") else None
    spec = blob.prop(node, "interrupts")
    gic = interrupt_parent(blob, node)
    if names is None or spec is None or gic is None or not blob.compatible(gic, *GIC):
        return found
    value = blob.prop(gic, "#interrupt-cells")
    if value is None or len(value) != 4:
        return found
    cells = int.from_bytes(value, "big")
    if not 2 <= cells <= 4 or len(spec) % (4 * cells):
        return found
    for index, name in enumerate(names):
        if 4 * cells * (index + 1) > len(spec):
            break
        kind = number(spec, 4 * cells * index, 1)
        irq = number(spec, 4 * cells * index + 4, 1)
        base = {0: 32, 1: 16}.get(kind)
        if base is None or irq + base >= 1 << 32:
            continue
        found[name] = irq + base
    return found


def first_cell(blob, node, name):
    value = blob.prop(node, name)
    return hex(number(value, 0, 1)) if value and len(value) >= 4 else "-"


def pci_bridge(blob, node):
    """PCI bus binding (IEEE 1275 PCI supplement) ranges: 3-cell child
    address, phys.hi space code in bits 24-25; pci-iommu.txt / pci-msi.txt:
    4-cell (rid, phandle, base, length) tuples."""
    name = blob.path(node)
    lines = ["pci %s ecam-generic=%d msi-parent=%s" % (name, blob.compatible(node, "pci-host-ecam-generic"),
                                                     first_cell(blob, node, "msi-parent"))]
    ranges = blob.prop(node, "ranges")
    if ranges is not None:
        if blob.address_cells(node) != 3:
            raise Rejected(node, "#address-cells")
        pc, sc = blob.address_cells(blob.parent(node)), blob.size_cells(node)
        if not 1 <= pc <= 2:
            raise Rejected(node, "#address-cells")
        if not 1 <= sc <= 2:
            raise Rejected(node, "#size-cells")
        tuple_bytes = 4 * (3 + pc + sc)
        if len(ranges) % tuple_bytes:
            raise Rejected(node, "ranges")
        count = 0
        for offset in range(0, len(ranges), tuple_bytes):
            hi = number(ranges, offset, 1)
            pci = number(ranges, offset + 4, 2)
            cpu = number(ranges, offset + 12, pc)
            size = number(ranges, offset + 12 + 4 * pc, sc)
            space = hi >> 24 & 3
            if space == 0:
                raise Rejected(node, "ranges")
            if pci + size > 1 << 64 or cpu + size > 1 << 64:
                raise Rejected(node, "ranges")
            cpu, _ = translate(blob, node, cpu, size)
            count += 1
            if count > 8:
                raise Rejected(node, "ranges")
            lines.append("pci-window %s space=%d pref=%d %s %s %s" % (name, space, hi >> 30 & 1, hex(pci), hex(cpu),
                                                                      hex(size)))
    for prop, tag in (("iommu-map", "pci-iommu-map"), ("msi-map", "pci-msi-map")):
        value = blob.prop(node, prop)
        if value is None:
            continue
        if len(value) % 16 or len(value) > 16 * 16:
            raise Rejected(node, prop)
        for offset in range(0, len(value), 16):
            lines.append("%s %s %s" % (tag, name, " ".join(hex(number(value, offset + 4 * i, 1)) for i in range(4))))
    return lines


def describe(blob):
    out = []
    fdt = blob.fdt
    # DT spec 5.3; the binding's get_mem_rsv does not return its values.
    raw, offset = bytes(fdt.as_bytearray()), fdt.off_mem_rsvmap()
    for _ in range(fdt.num_mem_rsv()):
        address, size = number(raw, offset, 2), number(raw, offset + 8, 2)
        out.append("memreserve %s %s" % (hex(address), hex(size)))
        offset += 16
    if len(out) > 16:
        raise Rejected(None, None)
    memory, reserved = [], []
    for node in blob.children(0):
        if not blob.enabled(node):
            continue
        if blob.prop(node, "device_type") == b"memory\0":
            entries = reg_entries(blob, node, 0)
            if entries is None:
                raise Rejected(node, "reg")
            memory += ["memory %s %s" % (hex(b), hex(s)) for b, s in entries if s]
        elif fdt.get_name(node) == "reserved-memory":
            # reserved-memory.yaml: children with a static reg; no-map.
            for child in blob.children(node):
                if not blob.enabled(child):
                    continue
                entries = reg_entries(blob, child, node)
                for b, s in entries or []:
                    if s:
                        reserved.append("reserved %s %s nomap=%d %s" % (
                            hex(b), hex(s), blob.prop(child, "no-map") is not None, blob.path(child)))
    if len(memory) > 16 or len(reserved) > 64:
        raise Rejected(None, None)
    smmus, ecam = [], 0
    for node in blob.nodes():
        if not blob.enabled(node):
            continue
        if blob.compatible(node, "arm,smmu-v3"):
            base, size = first_cpu_range(blob, node)
            irqs = smmu_interrupts(blob, node)
            blob.phandle(node)
            smmus.append("smmu %s %s %s coherent=%d msi-parent=%s eventq=%s priq=%s cmdq-sync=%s gerror=%s" % (
                blob.path(node), hex(base), hex(size), blob.prop(node, "dma-coherent") is not None,
                first_cell(blob, node, "msi-parent"),
                *(hex(irqs[n]) if n in irqs else "-" for n in ("eventq", "priq", "cmdq-sync", "gerror"))))
        elif blob.compatible(node, "pci-host-ecam-generic"):
            ecam += 1
            if ecam > 1:
                raise Rejected(node, "compatible")
    if len(smmus) > 8:
        raise Rejected(None, None)
    psci = fdt.path_offset("/psci", quiet=(libfdt.NOTFOUND,))
    if psci < 0:
        psci = next((n for n in blob.children(0)
                     if blob.compatible(n, "arm,psci-1.0", "arm,psci-0.2", "arm,psci")), -1)
    if psci >= 0 and blob.string(psci, "method") not in ("smc", "hvc"):
        raise Rejected(psci, "method")
    out = memory + out + reserved + [console(blob)] + smmus
    for node in blob.nodes():
        if blob.string(node, "device_type") == "pci" and blob.enabled(node):
            parent = blob.parent(node)
            if parent is not None and blob.string(parent, "device_type") == "pci":
                continue
            out += pci_bridge(blob, node)
    return out


def boards(path):
    """{board: [lines]} of an output, in order."""
    result, current = {}, None
    with open(path) as f:
        for line in f.read().splitlines():
            if line.startswith("== "):
                current = result.setdefault(line[3:], [])
            elif current is not None:
                current.append(line)
    return result


def compare(platform_path, reference_path, expected):
    """Per board, the platform layer's lines against the reference's. The
    platform's error lines carry its error case first; only the node and
    property it names are compared."""
    platform, reference = boards(platform_path), boards(reference_path)
    disagreements, errors, unnamed, smmus = 0, 0, 0, 0
    consoles = {}
    for board in sorted(set(platform) | set(reference)):
        ours = []
        for line in platform.get(board, ["(missing)"]):
            if line.startswith("error "):
                errors += 1
                _case, node, prop = line.rsplit(" ", 2)
                unnamed += node == "-" or prop == "-"
                line = "error %s %s" % (node, prop)
            elif line.startswith("smmu "):
                smmus += 1
            elif line.startswith("console "):
                kind = line.split(" ")[1] if line == "console none" else line.split(" ")[4]
                consoles[kind] = consoles.get(kind, 0) + 1
            ours.append(line)
        theirs = reference.get(board, ["(missing)"])
        if ours != theirs:
            disagreements += 1
            print("dtb corpus: %s disagrees:" % board)
            for line in sorted(set(ours) - set(theirs)):
                print("    platform:  " + line)
            for line in sorted(set(theirs) - set(ours)):
                print("    reference: " + line)
    parsed = len(platform)
    print("dtb corpus: %d boards parsed (%d described, %d typed errors, %d naming no node or property), "
          "%d SMMUv3s found, consoles: %s, disagreements: %d" % (
              parsed, parsed - errors, errors, unnamed, smmus,
              ", ".join("%s %d" % kv for kv in sorted(consoles.items())), disagreements))
    return 0 if disagreements == 0 and unnamed == 0 and parsed == expected else 1


def main():
    if sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    root = sys.argv[1]
    lines = []
    for name in sys.argv[2:]:
        lines.append("== " + name)
        with open(os.path.join(root, name), "rb") as f:
            blob = Blob(f.read())
        try:
            lines += describe(blob)
        except Rejected as rejected:
            where = blob.path(rejected.node) if rejected.node is not None else "-"
            lines.append("error %s %s" % (where, rejected.prop or "-"))
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    # Debian's binding can crash in its own finaliser: leave without it.
    os._exit(0)


if __name__ == "__main__":
    main()
