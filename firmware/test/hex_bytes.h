// Hex strings from the shared vectors (tests/vectors/*.json) as bytes, for the doctest suites
// that check the codecs against them; a test vector never exceeds 800 bytes.
#ifndef HEX_BYTES_H
#define HEX_BYTES_H

#include <doctest/doctest.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace hex_bytes {

struct Bytes {
  uint8_t data[800];
  size_t length;
};

inline int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

inline Bytes unhex(const char* hex) {
  Bytes out = {{}, 0};
  const size_t length = strlen(hex);
  REQUIRE(length % 2 == 0);
  REQUIRE(length / 2 <= sizeof out.data);
  for (size_t i = 0; i < length; i += 2) {
    REQUIRE(nibble(hex[i]) >= 0);
    REQUIRE(nibble(hex[i + 1]) >= 0);
    out.data[out.length++] = static_cast<uint8_t>(nibble(hex[i]) * 16 + nibble(hex[i + 1]));
  }
  return out;
}

inline bool same(const uint8_t* a, size_t aLength, const Bytes& b) {
  return aLength == b.length && (aLength == 0 || memcmp(a, b.data, aLength) == 0);
}

}  // namespace hex_bytes

#endif  // HEX_BYTES_H
