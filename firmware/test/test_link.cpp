// The C++ serial link codec against tests/vectors/serial_link.json (the same vectors the
// Python codec passes), plus limits, flash strings and a garbage soak under the sanitizers.

#include <doctest/doctest.h>
#include <stdio.h>

#include "Arduino.h"
#include "MsgfloLink.h"
#include "hex_bytes.h"
#include "serial_link_vectors.h"

using namespace msgflo::link;
using namespace hex_bytes;

namespace {

bool eq(const char* a, const char* b) {
  return strcmp(a, b) == 0;
}

bool sameText(const uint8_t* a, size_t aLength, const char* text) {
  return aLength == strlen(text) && (aLength == 0 || memcmp(a, text, aLength) == 0);
}

struct Outcome {
  int frames;
  int errors;
  LinkError lastError;
};

// Pushes every byte; counts events. The last frame stays readable in decoder.frame().
Outcome pushAll(LinkDecoder& decoder, const Bytes& bytes) {
  Outcome outcome = {0, 0, LinkError::None};
  for (size_t i = 0; i < bytes.length; ++i) {
    const LinkDecoder::Event event = decoder.push(bytes.data[i]);
    if (event == LinkDecoder::Event::Frame) ++outcome.frames;
    if (event == LinkDecoder::Event::Error) {
      ++outcome.errors;
      outcome.lastError = decoder.error();
    }
  }
  return outcome;
}

void checkFields(const vectors::Frame& v, const Frame& f) {
  const char* kind = v.kind;
  if (eq(kind, "Hello")) {
    CHECK(f.protocol == v.protocol);
    CHECK(f.maxFrame == v.maxFrame);
    CHECK(sameText(f.name, f.nameLength, v.firmwareName));
    CHECK(sameText(f.version, f.versionLength, v.version));
  } else if (eq(kind, "DescribeRequest")) {
    CHECK(f.isRequest);
    CHECK(f.offset == v.offset);
  } else if (eq(kind, "Description")) {
    CHECK_FALSE(f.isRequest);
    CHECK(f.offset == v.offset);
    CHECK(f.total == v.total);
    CHECK(same(f.data, f.dataLength, unhex(v.data)));
  } else if (eq(kind, "PortMessage")) {
    CHECK(f.port == v.port);
    CHECK(same(f.data, f.dataLength, unhex(v.payload)));
  } else if (eq(kind, "Pong")) {
    CHECK(f.counters.cobs == v.counters[0]);
    CHECK(f.counters.crc == v.counters[1]);
    CHECK(f.counters.overflow == v.counters[2]);
    CHECK(f.counters.rejected == v.counters[3]);
  } else if (eq(kind, "DeviceError")) {
    CHECK(f.code == v.code);
    CHECK(sameText(f.data, f.dataLength, v.text));
  } else {
    CHECK(eq(kind, "Ping"));
  }
}

// Builds the frame a vector describes with the library's builders; false if it cannot (a
// vector that shows what a later protocol version may send).
// `bytes` views `data`; both must outlive the frame (FrameBytes does not copy bodies).
bool buildFromVector(const vectors::Frame& v, FrameBytes& frame, const Bytes& data,
                     const RamBytes& bytes) {
  const char* kind = v.kind;
  if (eq(kind, "Hello")) {
    if (v.protocol != kProtocolVersion) return false;
    return buildHello(frame, v.seq, v.firmwareName, v.version, static_cast<uint8_t>(v.maxFrame));
  }
  if (eq(kind, "DescribeRequest")) {
    return buildDescribeRequest(frame, v.seq, static_cast<uint16_t>(v.offset));
  }
  if (eq(kind, "Description")) {
    return buildDescription(frame, v.seq, static_cast<uint16_t>(v.offset),
                            static_cast<uint16_t>(v.total), bytes);
  }
  if (eq(kind, "PortMessage")) {
    return buildMessage(frame, v.seq, static_cast<uint8_t>(v.port), data.data, data.length);
  }
  if (eq(kind, "Ping")) return buildPing(frame, v.seq);
  if (eq(kind, "Pong")) {
    if (strstr(v.name, "extra")) return false;
    const ErrorCounters counters = {
        static_cast<uint16_t>(v.counters[0]), static_cast<uint16_t>(v.counters[1]),
        static_cast<uint16_t>(v.counters[2]), static_cast<uint16_t>(v.counters[3])};
    return buildPong(frame, v.seq, counters);
  }
  return buildError(frame, v.seq, static_cast<uint8_t>(v.code), v.text);
}

}  // namespace

TEST_CASE("the CRC check value and the CRC vectors") {
  const uint8_t check[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  CHECK(crc16(check, sizeof check) == 0x29B1);
  for (size_t i = 0; i < vectors::kCrcCount; ++i) {
    const Bytes input = unhex(vectors::kCrc[i].input);
    CHECK(crc16(input.data, input.length) == vectors::kCrc[i].crc);
  }
}

TEST_CASE("COBS vectors, both ways") {
  for (size_t i = 0; i < vectors::kCobsCount; ++i) {
    const vectors::Cobs& v = vectors::kCobs[i];
    CAPTURE(v.name);
    const Bytes decoded = unhex(v.decoded);
    const Bytes encoded = unhex(v.encoded);
    fake::BufferPrint<600> out;
    const size_t written = cobsEncode(RamBytes(decoded.data, decoded.length), out);
    CHECK(written == encoded.length);
    CHECK(same(out.data(), out.length(), encoded));
    uint8_t back[600];
    const int length = cobsDecode(encoded.data, encoded.length, back, sizeof back);
    REQUIRE(length >= 0);
    CHECK(same(back, static_cast<size_t>(length), decoded));
  }
}

TEST_CASE("frame vectors decode to their fields") {
  for (size_t i = 0; i < vectors::kFramesCount; ++i) {
    const vectors::Frame& v = vectors::kFrames[i];
    CAPTURE(v.name);
    StaticLinkDecoder<kMaxFrame> decoder;
    const Outcome outcome = pushAll(decoder, unhex(v.wire));
    REQUIRE(outcome.frames == 1);
    CHECK(outcome.errors == 0);
    const Frame& f = decoder.frame();
    CHECK(static_cast<char>(f.type) == v.type);
    CHECK(f.seq == v.seq);
    CHECK(same(f.body, f.bodyLength, unhex(v.body)));
    checkFields(v, f);
  }
}

TEST_CASE("frame vectors encode to their exact bytes, one write per byte") {
  int built = 0;
  for (size_t i = 0; i < vectors::kFramesCount; ++i) {
    const vectors::Frame& v = vectors::kFrames[i];
    CAPTURE(v.name);
    const char* kind = v.kind;
    const Bytes data = unhex(eq(kind, "PortMessage") ? v.payload : v.data);
    const RamBytes bytes(data.data, data.length);
    FrameBytes frame;
    if (!buildFromVector(v, frame, data, bytes)) continue;
    ++built;
    fake::BufferPrint<600> out;
    const size_t written = writeFrame(out, frame);
    const Bytes wire = unhex(v.wire);
    CHECK(written == wire.length);
    CHECK(out.writes() == wire.length);
    CHECK(same(out.data(), out.length(), wire));
  }
  CHECK(built == static_cast<int>(vectors::kFramesCount) - 2);
}

TEST_CASE("invalid vectors give their error and are counted") {
  for (size_t i = 0; i < vectors::kInvalidCount; ++i) {
    const vectors::Invalid& v = vectors::kInvalid[i];
    CAPTURE(v.name);
    StaticLinkDecoder<kMaxFrame> decoder;
    const Outcome outcome = pushAll(decoder, unhex(v.wire));
    CHECK(outcome.frames == 0);
    REQUIRE(outcome.errors == 1);
    CHECK(eq(linkErrorName(outcome.lastError), v.error));
    const ErrorCounters& c = decoder.counters();
    CHECK(c.cobs + c.crc + c.overflow + c.rejected == 1);
  }
}

TEST_CASE("stream vectors give their events in order") {
  for (size_t i = 0; i < vectors::kStreamsCount; ++i) {
    const vectors::Stream& v = vectors::kStreams[i];
    CAPTURE(v.name);
    StaticLinkDecoder<kMaxFrame> decoder;
    const Bytes wire = unhex(v.wire);
    char events[200] = "";
    for (size_t n = 0; n < wire.length; ++n) {
      const LinkDecoder::Event event = decoder.push(wire.data[n]);
      if (event == LinkDecoder::Event::None) continue;
      if (events[0]) strcat(events, ",");
      if (event == LinkDecoder::Event::Error) {
        strcat(events, "error:");
        strcat(events, linkErrorName(decoder.error()));
      } else {
        const char type[2] = {static_cast<char>(decoder.frame().type), 0};
        strcat(events, type);
      }
    }
    CHECK(eq(events, v.events));
  }
}

TEST_CASE("an AVR-sized decoder takes 60-byte frames and drops longer ones") {
  StaticLinkDecoder<kAvrMaxFrame> decoder;
  uint8_t payload[kAvrMaxFrame] = {};
  fake::BufferPrint<300> out;
  FrameBytes frame;
  REQUIRE(buildMessage(frame, 1, 0, payload, kAvrMaxFrame - 5));  // 60 bytes with header+CRC
  writeFrame(out, frame);
  REQUIRE(buildMessage(frame, 2, 0, payload, kAvrMaxFrame - 4));  // 61: too long for it
  writeFrame(out, frame);
  REQUIRE(buildPing(frame, 3));
  writeFrame(out, frame);
  Bytes wire = {{}, out.length()};
  memcpy(wire.data, out.data(), out.length());
  const Outcome outcome = pushAll(decoder, wire);
  CHECK(outcome.frames == 2);
  CHECK(outcome.errors == 1);
  CHECK(outcome.lastError == LinkError::TooLong);
  CHECK(decoder.counters().overflow == 1);
  CHECK(decoder.frame().type == FrameType::Ping);
  CHECK(decoder.frames() == 2);
}

TEST_CASE("builders refuse what does not fit") {
  static uint8_t payload[kMaxFrame] = {};
  FrameBytes frame;
  CHECK(buildMessage(frame, 0, 0, payload, kMaxBody - 1));
  CHECK(frame.size() == kMaxFrame);
  CHECK_FALSE(buildMessage(frame, 0, 0, payload, kMaxBody));
  char longName[300];
  memset(longName, 'x', sizeof longName - 1);
  longName[sizeof longName - 1] = 0;
  CHECK_FALSE(buildHello(frame, 0, longName, "1", 60));
  const RamBytes three(payload, 3);
  CHECK_FALSE(buildDescription(frame, 0, 10, 12, three));  // 10 + 3 > 12
  CHECK_FALSE(frame.close());                              // already closed
}

TEST_CASE("hello and error texts can come from flash") {
  static const char name[] PROGMEM = "ButtonLed";
  static const char version[] PROGMEM = "1.0.0";
  FrameBytes frame;
  REQUIRE(buildHello(frame, 0, name, version, kAvrMaxFrame, true));
  fake::BufferPrint<64> out;
  writeFrame(out, frame);
  StaticLinkDecoder<kMaxFrame> decoder;
  Bytes wire = {{}, out.length()};
  memcpy(wire.data, out.data(), out.length());
  REQUIRE(pushAll(decoder, wire).frames == 1);
  CHECK(sameText(decoder.frame().name, decoder.frame().nameLength, "ButtonLed"));
  CHECK(decoder.frame().maxFrame == kAvrMaxFrame);
}

TEST_CASE("the encoder reads bodies from a ByteSource without copying them") {
  // A body computed on the fly: 200 bytes of a pattern with zeros in it.
  class Pattern : public ByteSource {
   public:
    size_t size() const override { return 200; }
    uint8_t at(size_t index) const override { return static_cast<uint8_t>(index % 7 * 40); }
  };
  const Pattern pattern;
  FrameBytes frame;
  REQUIRE(buildMessage(frame, 9, 4, pattern));
  fake::BufferPrint<300> out;
  writeFrame(out, frame);
  StaticLinkDecoder<kMaxFrame> decoder;
  Bytes wire = {{}, out.length()};
  memcpy(wire.data, out.data(), out.length());
  REQUIRE(pushAll(decoder, wire).frames == 1);
  CHECK(decoder.frame().port == 4);
  REQUIRE(decoder.frame().dataLength == 200);
  for (size_t i = 0; i < 200; ++i) CHECK(decoder.frame().data[i] == pattern.at(i));
}

TEST_CASE("random garbage between frames: every frame after a 0x00 comes through") {
  uint32_t state = 12345;
  const auto next = [&state]() {
    state = state * 1103515245u + 12345u;
    return static_cast<uint8_t>(state >> 16);
  };
  StaticLinkDecoder<kMaxFrame> decoder;
  fake::BufferPrint<300> out;
  FrameBytes frame;
  uint8_t payload[64];
  int pings = 0;
  for (int round = 0; round < 2000; ++round) {
    const size_t garbage = next() % 100u;
    for (size_t i = 0; i < garbage; ++i) decoder.push(next());
    decoder.push(0);
    for (uint8_t& byte : payload) byte = next();
    REQUIRE(buildMessage(frame, static_cast<uint8_t>(round), 1, payload, next() % 64u));
    out.clear();
    writeFrame(out, frame);
    int got = 0;
    for (size_t i = 0; i < out.length(); ++i) {
      if (decoder.push(out.data()[i]) == LinkDecoder::Event::Frame) ++got;
    }
    CHECK(got == 1);
    CHECK(decoder.frame().seq == static_cast<uint8_t>(round));
    pings += got;
  }
  CHECK(pings == 2000);
}

TEST_CASE("a device loop on a Stream answers a ping with its counters") {
  fake::ScriptedStream<256> serial;
  fake::BufferPrint<64> host;
  FrameBytes frame;
  const uint8_t noise[] = {0x42, 0x17, 0x00};  // a dropped frame the pong will report
  serial.script(noise, sizeof noise);
  REQUIRE(buildPing(frame, 77));
  writeFrame(host, frame);
  serial.script(host.data(), host.length());

  fake::setMillis(1000);
  StaticLinkDecoder<kAvrMaxFrame> decoder;
  while (serial.available() > 0) {  // what a sketch's loop() does
    const int byte = serial.read();
    if (decoder.push(static_cast<uint8_t>(byte)) == LinkDecoder::Event::Frame &&
        decoder.frame().type == FrameType::Ping) {
      REQUIRE(buildPong(frame, decoder.frame().seq, decoder.counters()));
      writeFrame(serial, frame);
    }
    fake::advanceMillis(1);
  }
  CHECK(millis() == 1000 + sizeof noise + host.length());

  StaticLinkDecoder<kMaxFrame> hostDecoder;
  Bytes wire = {{}, serial.written().length()};
  memcpy(wire.data, serial.written().data(), wire.length);
  REQUIRE(pushAll(hostDecoder, wire).frames == 1);
  CHECK(hostDecoder.frame().type == FrameType::Pong);
  CHECK(hostDecoder.frame().seq == 77);
  CHECK(hostDecoder.frame().counters.cobs == 1);
}

TEST_CASE("a device decoder parses only what a host sends it") {
  StaticLinkDecoder<kMaxFrame> decoder(parseDeviceBody);
  fake::BufferPrint<600> out;
  FrameBytes frame;
  const uint8_t payload[] = {'x'};
  const RamBytes data(payload, 1);
  REQUIRE(buildPing(frame, 1));
  writeFrame(out, frame);
  REQUIRE(buildDescribeRequest(frame, 2, 300));
  writeFrame(out, frame);
  REQUIRE(buildMessage(frame, 3, 7, payload, 1));
  writeFrame(out, frame);
  REQUIRE(buildHello(frame, 4, "host", "1", 60));  // the rest only ever goes to a host
  writeFrame(out, frame);
  REQUIRE(buildDescription(frame, 5, 0, 1, data));
  writeFrame(out, frame);
  const ErrorCounters counters = {0, 0, 0, 0};
  REQUIRE(buildPong(frame, 6, counters));
  writeFrame(out, frame);
  REQUIRE(buildError(frame, 7, 1, "x"));
  writeFrame(out, frame);
  frame.begin(FrameType::Describe, 8);  // a 1-byte describe body is malformed for anyone
  REQUIRE((frame.addByte(0) && frame.close()));
  writeFrame(out, frame);
  char events[100] = "";
  for (size_t i = 0; i < out.length(); ++i) {
    const LinkDecoder::Event event = decoder.push(out.data()[i]);
    if (event == LinkDecoder::Event::None) continue;
    const Frame& f = decoder.frame();
    char text[20];
    if (event == LinkDecoder::Event::Frame) {
      snprintf(text, sizeof text, "%c%u ", static_cast<char>(f.type), f.seq);
    } else {
      snprintf(text, sizeof text, "%s%u ", linkErrorName(decoder.error()), f.seq);
    }
    strcat(events, text);
    if (f.seq == 2) CHECK((f.isRequest && f.offset == 300));
    if (f.seq == 3) CHECK((f.port == 7 && f.dataLength == 1));
  }
  CHECK(eq(events, "P1 D2 M3 unknown_type4 unknown_type5 unknown_type6 unknown_type7 bad_body8 "));
  CHECK(decoder.counters().rejected == 5);
}
