# Writes a C file defining `NAME` (the bytes of IN, NUL-terminated) and `NAME_len`:
#   cmake -DIN=file -DOUT=file.c -DNAME=symbol -DHEADER=area/header.h -P cmake/embed.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" digits)
math(EXPR len "${digits} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){32})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}.tmp" "/* Generated from ${IN} by cmake/embed.cmake: do not edit. */\n"
     "#include \"${HEADER}\"\n\n"
     "const unsigned char ${NAME}[] = {\n${bytes}0};\n"
     "const size_t ${NAME}_len = ${len};\n")
# Only touch OUT when it changes, so nothing rebuilds for nothing.
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
