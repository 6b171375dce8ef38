// The msgflo-gateway serial link codec: CRC-16, COBS, frame writers and a streaming decoder.
//
// The wire format is specified in docs/serial-link.md and pinned by the test vectors in
// tests/vectors/serial_link.json, which this codec and the gateway's Python codec
// (gateway/bridges/serial/link.py) both pass. A frame on the wire is
//
//     COBS( type:u8 | seq:u8 | body | crc16:u16 big-endian ) 0x00
//
// Freestanding on purpose: only <stdint.h>, <stddef.h> and <string.h> (plus avr-libc's pgmspace
// on AVR/ESP8266), no heap, no STL, no Arduino String, so the same code builds for an Uno, an
// ESP8266/ESP32, an ARM board and the host tests. Output goes to any object with a
// `write(uint8_t)` member (an Arduino Print, a HardwareSerial, a test fake) one byte at a time:
// the encoder looks ahead in its input instead of buffering a COBS block.

#ifndef MSGFLO_LINK_H
#define MSGFLO_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVR__) || defined(ESP8266)
#include <avr/pgmspace.h>
#define MSGFLO_PGM_BYTE(address) pgm_read_byte(address)
#else
#define MSGFLO_PGM_BYTE(address) (*reinterpret_cast<const uint8_t*>(address))
#endif

namespace msgflo {
namespace link {

static const uint8_t kProtocolVersion = 1;
static const size_t kMaxFrame = 254;  // largest decoded frame (type..crc): one COBS block
static const size_t kMinFrame = 4;    // type, seq, two CRC bytes
static const size_t kMaxBody = kMaxFrame - kMinFrame;
static const size_t kAvrMaxFrame = 60;  // what fits an ATmega328P's 64-byte RX ring

enum class FrameType : uint8_t {
  Hello = 'H',
  Describe = 'D',  // request (body of 0 or 2 bytes) and reply (4 or more)
  Message = 'M',
  Ping = 'P',
  Pong = 'p',
  Error = 'E',
};

enum class LinkError : uint8_t {
  None = 0,
  BadCobs,
  BadCrc,
  TooShort,
  TooLong,
  UnknownType,
  BadBody,
};

enum class DeviceErrorCode : uint8_t {
  UnknownType = 1,
  BadBody = 2,
  NoSuchPort = 3,
  TooLong = 4,
  Busy = 5,
};

// The same words the vectors and the Python codec use ("bad_crc", ...).
const char* linkErrorName(LinkError error);

uint16_t crc16Update(uint16_t crc, uint8_t byte);
uint16_t crc16(const uint8_t* data, size_t length, uint16_t crc = 0xFFFF);

// Random-access bytes the encoder reads three times each (for the CRC, to find the next zero,
// to write). Subclass it to stream a body from wherever it lives.
class ByteSource {
 public:
  virtual size_t size() const = 0;
  virtual uint8_t at(size_t index) const = 0;

 protected:
  ~ByteSource() {}
};

class RamBytes : public ByteSource {
 public:
  RamBytes(const uint8_t* data, size_t length) : data_(data), length_(length) {}
  size_t size() const override { return length_; }
  uint8_t at(size_t index) const override { return data_[index]; }

 private:
  const uint8_t* data_;
  size_t length_;
};

class ProgmemBytes : public ByteSource {
 public:
  ProgmemBytes(const uint8_t* data, size_t length) : data_(data), length_(length) {}
  size_t size() const override { return length_; }
  uint8_t at(size_t index) const override { return MSGFLO_PGM_BYTE(data_ + index); }

 private:
  const uint8_t* data_;
  size_t length_;
};

// One whole frame (type, seq, body parts, CRC) as a ByteSource, without copying the body:
// parts refer to the caller's RAM, flash or ByteSource, which must outlive the FrameBytes.
// Small fixed fields are kept inline. begin() starts a frame, close() appends the CRC.
class FrameBytes : public ByteSource {
 public:
  static const uint8_t kMaxParts = 6;
  static const uint8_t kMaxInline = 12;

  FrameBytes() { begin(FrameType::Ping, 0); }
  FrameBytes(const FrameBytes&) = delete;
  FrameBytes& operator=(const FrameBytes&) = delete;

  void begin(FrameType type, uint8_t seq);
  bool addByte(uint8_t byte);
  bool addU16(uint16_t value);  // big-endian
  bool addBytes(const uint8_t* data, size_t length);
  bool addProgmem(const uint8_t* data, size_t length);
  bool add(const ByteSource& source);
  // Appends the CRC. False if a part did not fit or the frame is over kMaxFrame.
  bool close();
  bool ok() const { return ok_; }

  size_t size() const override { return closed_ ? length_ + 2 : length_; }
  uint8_t at(size_t index) const override;

 private:
  enum class Where : uint8_t { Ram, Progmem, Source };
  struct Part {
    Where where;
    const uint8_t* data;
    const ByteSource* source;
    size_t length;
  };
  bool addPart(Where where, const uint8_t* data, const ByteSource* source, size_t length);

  uint8_t head_[2];
  uint8_t inline_[kMaxInline];
  uint8_t inlineUsed_;
  Part parts_[kMaxParts];
  uint8_t partCount_;
  size_t length_;
  uint8_t crc_[2];
  bool ok_;
  bool closed_;
};

// COBS without the delimiter: blocks of up to 254 non-zero bytes behind a length code; no
// extra code after a final full block. Returns the number of bytes written.
template <class Out>
size_t cobsEncode(const ByteSource& source, Out& out) {
  const size_t length = source.size();
  size_t start = 0;
  size_t written = 0;
  for (;;) {
    size_t end = start;
    while (end < length && end - start < 254 && source.at(end) != 0) {
      ++end;
    }
    out.write(static_cast<uint8_t>(end - start + 1));
    for (size_t i = start; i < end; ++i) {
      out.write(source.at(i));
    }
    written += end - start + 1;
    if (end >= length) {
      return written;
    }
    start = end - start == 254 ? end : end + 1;  // a full block implies no zero
  }
}

// The frame, then the 0x00 delimiter. Returns bytes written.
template <class Out>
size_t writeFrame(Out& out, const FrameBytes& frame) {
  const size_t written = cobsEncode(frame, out);
  out.write(static_cast<uint8_t>(0));
  return written + 1;
}

// Decodes one COBS-encoded block sequence (no delimiter) into out[0..capacity). Returns the
// decoded length, or -1 if the encoding is cut short, contains a 0x00 or does not fit.
int cobsDecode(const uint8_t* in, size_t length, uint8_t* out, size_t capacity);

struct ErrorCounters {
  uint16_t cobs;
  uint16_t crc;
  uint16_t overflow;
  uint16_t rejected;  // too short, unknown type, bad body
};

// Frame builders: begin, add the body, close. False if a value does not fit the format or the
// frame would exceed kMaxFrame (then nothing may be sent). Strings are NUL-terminated and
// `progmem` says they live in flash; like the payloads, they must outlive the FrameBytes.
bool buildHello(FrameBytes& frame, uint8_t seq, const char* name, const char* version,
                uint8_t maxFrame, bool progmem = false);
bool buildDescribeRequest(FrameBytes& frame, uint8_t seq, uint16_t offset);
bool buildDescription(FrameBytes& frame, uint8_t seq, uint16_t offset, uint16_t total,
                      const ByteSource& data);
bool buildMessage(FrameBytes& frame, uint8_t seq, uint8_t port, const uint8_t* payload,
                  size_t length);
bool buildMessage(FrameBytes& frame, uint8_t seq, uint8_t port, const ByteSource& payload);
bool buildPing(FrameBytes& frame, uint8_t seq);
bool buildPong(FrameBytes& frame, uint8_t seq, const ErrorCounters& counters);
bool buildError(FrameBytes& frame, uint8_t seq, uint8_t code, const char* text,
                bool progmem = false);

// A received frame, parsed. Pointers point into the decoder's buffer: valid until the next push.
struct Frame {
  FrameType type;
  uint8_t seq;
  const uint8_t* body;
  size_t bodyLength;
  // Hello
  uint8_t protocol;
  uint8_t maxFrame;
  const uint8_t* name;
  uint8_t nameLength;
  const uint8_t* version;
  uint8_t versionLength;
  // Describe: a request when isRequest; otherwise a reply slice data[0..dataLength)
  bool isRequest;
  uint16_t offset;
  uint16_t total;
  // Describe reply data, Message payload, Error text
  const uint8_t* data;
  size_t dataLength;
  // Message port, Error code
  uint8_t port;
  uint8_t code;
  ErrorCounters counters;
};

// Checks a decoded frame's body for its type and fills `frame`. Returns None or why not; after
// UnknownType and BadBody, frame.seq still holds the frame's sequence number (for the reply).
// Body parsers: parseAnyBody takes every type (a host, the tests); parseDeviceBody only what a
// host sends a device (ping, describe request, message) and rejects the rest as UnknownType, so
// a device does not link the parsers of frames it never receives.
typedef LinkError (*BodyParser)(Frame& frame);
LinkError parseAnyBody(Frame& frame);
LinkError parseDeviceBody(Frame& frame);

LinkError parseFrame(const uint8_t* raw, size_t length, Frame& frame,
                     BodyParser parser = parseAnyBody);

// Streaming decoder over caller-provided storage (no heap). `capacity` is the largest decoded
// frame accepted (kMinFrame..kMaxFrame); a frame longer than that on the wire is an overflow:
// one TooLong error, then everything up to the next 0x00 is discarded.
class LinkDecoder {
 public:
  enum class Event : uint8_t { None, Frame, Error };

  LinkDecoder(uint8_t* buffer, size_t capacity, BodyParser parser = parseAnyBody);

  Event push(uint8_t byte);
  const Frame& frame() const { return frame_; }
  LinkError error() const { return error_; }
  const ErrorCounters& counters() const { return counters_; }
  uint16_t frames() const { return frames_; }
  size_t capacity() const { return capacity_; }
  // The frame buffer (capacity() bytes). Once a frame has been handled it is free until the
  // next push, and a device may build a reply in it (frame() then no longer holds).
  uint8_t* scratch() { return buffer_; }
  void reset();

 private:
  Event finish();
  Event fail(LinkError error);
  void append(uint8_t byte);

  uint8_t* buffer_;
  size_t capacity_;
  size_t encoded_;
  size_t length_;
  uint8_t blockLeft_;
  uint8_t blockCode_;
  bool overflow_;
  LinkError error_;
  ErrorCounters counters_;
  uint16_t frames_;
  BodyParser parser_;
  Frame frame_;
};

template <size_t Capacity>
class StaticLinkDecoder : public LinkDecoder {
 public:
  explicit StaticLinkDecoder(BodyParser parser = parseAnyBody)
      : LinkDecoder(storage_, Capacity, parser) {}

 private:
  uint8_t storage_[Capacity];
};

}  // namespace link
}  // namespace msgflo

#endif  // MSGFLO_LINK_H
