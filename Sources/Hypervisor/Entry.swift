import ArchC

@c(hv_main)
func hvMain(_ dtb: UInt64) {
    Console.uartBase = 0x0900_0000
    Console.put("hello from EL")
    Console.decimal(arch_read_currentel() >> 2 & 3)
    Console.line("")
    var block: (UInt64, UInt64) = (0x20026, 0)
    _ = withUnsafeMutablePointer(to: &block) { arch_semihosting(0x20, UInt64(UInt(bitPattern: $0))) }
}

@c(hv_wrong_el)
func hvWrongEL(_ dtb: UInt64, _ el: UInt64) {
    Console.uartBase = 0x0900_0000
    Console.line("refusing: not EL2")
}

@c(hv_exception)
func hvException(_ frame: UnsafeMutablePointer<UInt64>, _ kind: UInt64) {
    Console.put("exception kind ")
    Console.decimal(kind)
    Console.put(" ESR ")
    Console.hex(frame[33])
    Console.put(" ELR ")
    Console.hex(frame[31])
    Console.put(" FAR ")
    Console.hex(frame[34])
    Console.line("")
    while true { arch_wfe() }
}
