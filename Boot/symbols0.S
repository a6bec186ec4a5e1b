/*
 * Boot/symbols0.S: the symbol table of the image's first link, empty (the
 * layout is AArch64's SymbolTable). The Makefile links once with this,
 * writes the real table from that link's symbols (scripts/symbol-table.sh)
 * and links again with it in place of this one; the table is the last thing
 * in .rodata, so no function moves between the two links.
 */
    .section .hv_symbols, "a"
    .balign 8
    .global hv_symbols, hv_symbols_end
hv_symbols:
    .long   0x544d5953, 0               /* magic "SYMT", no entries */
hv_symbols_end:
