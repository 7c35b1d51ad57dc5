#include "text.h"

int ek_format_decimal(char *dst, int32_t value)
{
    char digits[10];
    int count = 0;
    int length = 0;
    uint32_t magnitude = value < 0 ? 0u - (uint32_t)value : (uint32_t)value;
    if (value < 0) {
        dst[length++] = '-';
    }
    do {
        digits[count++] = (char)('0' + magnitude % 10u);
        magnitude /= 10u;
    } while (magnitude != 0u);
    while (count > 0) {
        dst[length++] = digits[--count];
    }
    return length;
}

int ek_format_hex32(char *dst, uint32_t value)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 8; ++i) {
        dst[i] = hex[(value >> (28 - 4 * i)) & 0xFu];
    }
    return 8;
}
