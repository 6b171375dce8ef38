// A tiny streaming JSON writer for microcontrollers: no String, no heap, no printf.
//
// JsonWriter writes one character at a time to a JsonSink (a fixed buffer, a counter, a window
// of a longer text), inserts the commas itself and escapes strings as RFC 8259 asks: `"` and
// `\` get a backslash, control characters below 0x20 become \b \f \n \r \t or \u00XX, other
// bytes (UTF-8 included) pass through. Strings can come from RAM or from flash (FlashText).
//
// The original msgflo-arduino concatenated JSON without escaping, which produced malformed
// discovery messages for labels with quotes; this writer exists so that cannot happen here.

#ifndef MSGFLO_JSON_H
#define MSGFLO_JSON_H

#include <Arduino.h>
#include <stddef.h>
#include <stdint.h>

#include "MsgfloLink.h"

#if defined(__GNUC__)
#define MSGFLO_NOINLINE __attribute__((noinline))
#else
#define MSGFLO_NOINLINE
#endif

namespace msgflo {

// A NUL-terminated string in flash (PROGMEM), as Arduino's F("...") makes it.
typedef const __FlashStringHelper* FlashText;

// A PROGMEM array as FlashText, for strings defined outside functions (where F() cannot be):
//   const char kComponent[] PROGMEM = "ButtonLed";  ...  flash(kComponent)
inline FlashText flash(const char* progmem) {
  return reinterpret_cast<FlashText>(progmem);
}

size_t flashLength(FlashText text);
inline uint8_t flashByte(FlashText text, size_t index) {
  return MSGFLO_PGM_BYTE(reinterpret_cast<const uint8_t*>(text) + index);
}

// Decimal text of a number into out[kNumberTextSize] (NUL-terminated); returns its length. No
// printf, so AVR needs no float printf support. formatDecimal takes 0..6 decimals (more are
// cut to 6) and writes `null` for NaN, infinities and magnitudes over 4e9 (JSON has no NaN).
const size_t kNumberTextSize = 24;
size_t formatInteger(long value, char* out);
size_t formatDecimal(float value, uint8_t decimals, char* out);

class JsonSink {
 public:
  virtual void put(char c) = 0;

 protected:
  ~JsonSink() {}
};

class JsonWriter {
 public:
  static const uint8_t kMaxDepth = 16;

  explicit JsonWriter(JsonSink& sink) : sink_(sink), depth_(0), filled_(0), afterKey_(false) {}

  JsonWriter& beginObject() { return open('{'); }
  JsonWriter& endObject() { return close('}'); }
  JsonWriter& beginArray() { return open('['); }
  JsonWriter& endArray() { return close(']'); }
  JsonWriter& key(const char* name);
  JsonWriter& key(FlashText name);
  JsonWriter& string(const char* text);
  JsonWriter& string(FlashText text);
  JsonWriter& string(const uint8_t* bytes, size_t length);
  JsonWriter& integer(long value);
  JsonWriter& decimal(float value, uint8_t decimals);
  JsonWriter& boolean(bool value);
  JsonWriter& null();
  // Text that is already JSON, written as it is.
  JsonWriter& raw(const char* json);

 private:
  JsonWriter& open(char bracket);
  JsonWriter& close(char bracket);
  void emit(char c);
  void separate();  // a comma before every item but the first of its container
  void put(const char* text);
  void putFlash(FlashText text);
  void quoted(const uint8_t* text, size_t length, bool inFlash);
  void escaped(uint8_t byte);

  JsonSink& sink_;
  uint8_t depth_;
  uint16_t filled_;  // bit n: the container at depth n already has an item
  bool afterKey_;
};

// A sink into fixed storage, which is also the ByteSource a message is sent from. When the text
// does not fit, overflowed() says so and an outport refuses to send it (never a cut JSON).
class JsonBufferBase : public JsonSink, public link::ByteSource {
 public:
  void put(char c) override;
  void clear() {
    length_ = 0;
    overflowed_ = false;
  }
  const char* data() const { return data_; }
  size_t length() const { return length_; }
  bool overflowed() const { return overflowed_; }
  size_t size() const override { return length_; }
  uint8_t at(size_t index) const override { return static_cast<uint8_t>(data_[index]); }

 protected:
  JsonBufferBase(char* data, size_t capacity)
      : data_(data), capacity_(capacity), length_(0), overflowed_(false) {}
  ~JsonBufferBase() {}

 private:
  char* data_;
  size_t capacity_;
  size_t length_;
  bool overflowed_;
};

template <size_t Capacity>
class JsonBuffer : public JsonBufferBase {
 public:
  JsonBuffer() : JsonBufferBase(storage_, Capacity) {}

 private:
  char storage_[Capacity];
};

// Counts the text and keeps the bytes at [offset, offset + capacity) of it: how a paged
// description is cut into slices without ever holding the whole text.
class JsonWindow : public JsonSink {
 public:
  JsonWindow(size_t offset, uint8_t* window, size_t capacity)
      : offset_(offset), window_(window), capacity_(capacity), total_(0), kept_(0) {}
  void put(char c) override;
  size_t total() const { return total_; }
  size_t kept() const { return kept_; }

 private:
  size_t offset_;
  uint8_t* window_;
  size_t capacity_;
  size_t total_;
  size_t kept_;
};

}  // namespace msgflo

#endif  // MSGFLO_JSON_H
