// The streaming JSON writer and number formatting; see MsgfloJson.h.

#include "MsgfloJson.h"

namespace msgflo {

size_t flashLength(FlashText text) {
  size_t length = 0;
  if (text) {
    while (flashByte(text, length) != 0) ++length;
  }
  return length;
}

namespace {

// Digits of value, most significant first, at out; returns how many.
size_t formatUnsigned(unsigned long value, char* out) {
  char digits[kNumberTextSize];
  size_t count = 0;
  do {
    digits[count++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  for (size_t i = 0; i < count; ++i) out[i] = digits[count - 1 - i];
  return count;
}

}  // namespace

size_t formatInteger(long value, char* out) {
  size_t length = 0;
  unsigned long magnitude = static_cast<unsigned long>(value);
  if (value < 0) {
    out[length++] = '-';
    magnitude = 0UL - magnitude;  // well defined for the most negative long too
  }
  length += formatUnsigned(magnitude, out + length);
  out[length] = 0;
  return length;
}

size_t formatDecimal(float value, uint8_t decimals, char* out) {
  if (!(value > -4e9f && value < 4e9f)) {  // NaN fails both comparisons
    memcpy(out, "null", 5);
    return 4;
  }
  if (decimals > 6) decimals = 6;
  const bool negative = value < 0;
  if (negative) value = -value;
  uint32_t scale = 1;
  for (uint8_t i = 0; i < decimals; ++i) scale *= 10;
  uint32_t whole = static_cast<uint32_t>(value);
  uint32_t fraction =
      static_cast<uint32_t>((value - static_cast<float>(whole)) * static_cast<float>(scale) + 0.5f);
  if (fraction >= scale) {  // rounding carried into the whole part: 0.999 -> 1.00
    ++whole;
    fraction -= scale;
  }
  size_t length = 0;
  if (negative && (whole != 0 || fraction != 0)) out[length++] = '-';
  length += formatUnsigned(whole, out + length);
  if (decimals > 0) {
    out[length++] = '.';
    for (uint32_t digit = scale / 10; digit > 0; digit /= 10) {
      out[length++] = static_cast<char>('0' + fraction / digit % 10);
    }
  }
  out[length] = 0;
  return length;
}

// -- JsonWriter --------------------------------------------------------------------------------

namespace {

const char kTrue[] PROGMEM = "true";
const char kFalse[] PROGMEM = "false";
const char kNull[] PROGMEM = "null";

const char kUnicodeEscape[] PROGMEM = "u00";

char hexDigit(uint8_t nibble) {
  return static_cast<char>(nibble < 10 ? '0' + nibble : 'a' + nibble - 10);
}

}  // namespace

// Every character goes through here: one call instead of a virtual call at each site.
MSGFLO_NOINLINE void JsonWriter::emit(char c) {
  sink_.put(c);
}

void JsonWriter::separate() {
  if (afterKey_) {
    afterKey_ = false;
    return;
  }
  if (depth_ == 0) return;
  const uint16_t bit = static_cast<uint16_t>(1u << (depth_ - 1));
  if (filled_ & bit) emit(',');
  filled_ = static_cast<uint16_t>(filled_ | bit);
}

JsonWriter& JsonWriter::open(char bracket) {
  separate();
  emit(bracket);
  if (depth_ < kMaxDepth) {
    ++depth_;
    filled_ = static_cast<uint16_t>(filled_ & ~(1u << (depth_ - 1)));
  }
  return *this;
}

JsonWriter& JsonWriter::close(char bracket) {
  emit(bracket);
  if (depth_ > 0) --depth_;
  return *this;
}

void JsonWriter::put(const char* text) {
  while (*text) emit(*text++);
}

void JsonWriter::putFlash(FlashText text) {
  for (size_t i = 0; flashByte(text, i) != 0; ++i) emit(static_cast<char>(flashByte(text, i)));
}

void JsonWriter::escaped(uint8_t byte) {
  char letter = 0;  // of a two-character escape (RFC 8259 section 7)
  switch (byte) {
    case '"':
    case '\\':
      letter = static_cast<char>(byte);
      break;
    case '\b':
      letter = 'b';
      break;
    case '\f':
      letter = 'f';
      break;
    case '\n':
      letter = 'n';
      break;
    case '\r':
      letter = 'r';
      break;
    case '\t':
      letter = 't';
      break;
    default:
      if (byte >= 0x20) {  // UTF-8 passes through
        emit(static_cast<char>(byte));
        return;
      }
  }
  emit('\\');
  if (letter) {
    emit(letter);
    return;
  }
  putFlash(flash(kUnicodeEscape));
  emit(hexDigit(static_cast<uint8_t>(byte >> 4)));
  emit(hexDigit(byte & 0x0F));
}

void JsonWriter::quoted(const uint8_t* text, size_t length, bool inFlash) {
  emit('"');
  for (size_t i = 0; i < length; ++i) escaped(inFlash ? MSGFLO_PGM_BYTE(text + i) : text[i]);
  emit('"');
}

JsonWriter& JsonWriter::key(const char* name) {
  string(name);
  emit(':');
  afterKey_ = true;
  return *this;
}

JsonWriter& JsonWriter::key(FlashText name) {
  string(name);
  emit(':');
  afterKey_ = true;
  return *this;
}

JsonWriter& JsonWriter::string(const char* text) {
  separate();
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(text ? text : "");
  quoted(bytes, strlen(reinterpret_cast<const char*>(bytes)), false);
  return *this;
}

JsonWriter& JsonWriter::string(FlashText text) {
  separate();
  quoted(reinterpret_cast<const uint8_t*>(text), flashLength(text), true);
  return *this;
}

JsonWriter& JsonWriter::string(const uint8_t* bytes, size_t length) {
  separate();
  quoted(bytes, length, false);
  return *this;
}

JsonWriter& JsonWriter::integer(long value) {
  char text[kNumberTextSize];
  formatInteger(value, text);
  return raw(text);
}

JsonWriter& JsonWriter::decimal(float value, uint8_t decimals) {
  char text[kNumberTextSize];
  formatDecimal(value, decimals, text);
  return raw(text);
}

JsonWriter& JsonWriter::boolean(bool value) {
  return raw(value ? "true" : "false");
}

JsonWriter& JsonWriter::null() {
  return raw("null");
}

JsonWriter& JsonWriter::raw(const char* json) {
  separate();
  put(json);
  return *this;
}

// -- sinks -------------------------------------------------------------------------------------

void JsonBufferBase::put(char c) {
  if (length_ < capacity_) {
    data_[length_++] = c;
  } else {
    overflowed_ = true;
  }
}

void JsonWindow::put(char c) {
  if (total_ >= offset_ && kept_ < capacity_) window_[kept_++] = static_cast<uint8_t>(c);
  ++total_;
}

}  // namespace msgflo
