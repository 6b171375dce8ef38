// The example sketches, compiled for the host against the fake Arduino core and run through
// setup() and loop() with a host on the other end of the fake Serial: what the serial bridge
// would see from them. Each sketch lives in its own namespace; its setup() runs once.

#include <doctest/doctest.h>

#include "Arduino.h"
#include "Msgflo.h"

// The sketches include <Msgflo.h> again: a no-op behind its include guard.
namespace echo {
#include "../examples/Echo/Echo.ino"
}
namespace button_led {
#include "../examples/ButtonLed/ButtonLed.ino"
}
namespace temperature {
#include "../examples/Temperature/Temperature.ino"
}

using namespace msgflo;
using link::FrameType;

namespace {

struct Seen {
  FrameType type;
  uint8_t seq;
  uint8_t body[link::kMaxFrame];
  size_t bodyLength;
};

// The host end of the board's Serial, from the bytes written so far on.
class Host {
 public:
  explicit Host(void (*loop)()) : loop_(loop), readPos_(Serial.written().length()) {}

  void send(link::FrameBytes& frame, bool built) {
    REQUIRE(built);
    fake::BufferPrint<300> wire;
    link::writeFrame(wire, frame);
    Serial.script(wire.data(), wire.length());
    loop_();
  }

  void message(uint8_t port, const char* payload) {
    link::FrameBytes frame;
    const uint8_t* bytes = reinterpret_cast<const uint8_t*>(payload);
    send(frame, link::buildMessage(frame, seq_++, port, bytes, strlen(payload)));
  }

  // The frames written since the last call; exactly one expected.
  Seen one() {
    Seen seen = {};
    int count = 0;
    const auto& written = Serial.written();
    REQUIRE_FALSE(written.overflowed());
    for (; readPos_ < written.length(); ++readPos_) {
      const auto event = decoder_.push(written.data()[readPos_]);
      REQUIRE(event != link::LinkDecoder::Event::Error);
      if (event != link::LinkDecoder::Event::Frame) continue;
      const link::Frame& f = decoder_.frame();
      seen.type = f.type;
      seen.seq = f.seq;
      memcpy(seen.body, f.body, f.bodyLength);
      seen.bodyLength = f.bodyLength;
      ++count;
    }
    REQUIRE(count == 1);
    return seen;
  }

  bool quiet() { return readPos_ == Serial.written().length(); }

  // A message frame on `port` with this payload.
  void expectMessage(uint8_t port, const char* payload) {
    const Seen seen = one();
    CHECK(seen.type == FrameType::Message);
    CHECK(seen.body[0] == port);
    REQUIRE(seen.bodyLength == 1 + strlen(payload));
    CHECK(memcmp(seen.body + 1, payload, strlen(payload)) == 0);
  }

  // The description, read back as the gateway does.
  void expectDescription(const char* expected) {
    char text[600];
    size_t have = 0;
    size_t total = 1;
    while (have < total) {
      link::FrameBytes frame;
      send(frame, link::buildDescribeRequest(frame, seq_++, static_cast<uint16_t>(have)));
      const Seen reply = one();
      REQUIRE(reply.type == FrameType::Describe);
      total = static_cast<size_t>(reply.body[2] << 8 | reply.body[3]);
      REQUIRE(total < sizeof text);
      REQUIRE(reply.bodyLength > 4);
      memcpy(text + have, reply.body + 4, reply.bodyLength - 4);
      have += reply.bodyLength - 4;
    }
    text[have] = 0;
    CHECK(strcmp(text, expected) == 0);
  }

 private:
  void (*loop_)();
  size_t readPos_;
  uint8_t seq_ = 1;
  link::StaticLinkDecoder<link::kMaxFrame> decoder_;
};

}  // namespace

TEST_CASE("Echo: hello, description, and every payload back on `out`") {
  Host host(echo::loop);
  echo::setup();
  CHECK(Serial.baud() == 115200);
  CHECK(host.one().type == FrameType::Hello);
  host.expectDescription(
      "{\"component\":\"Echo\",\"label\":\"Sends every message back\",\"icon\":\"repeat\","
      "\"inports\":[{\"id\":\"in\",\"type\":\"any\"}],\"outports\":[{\"id\":\"out\",\"type\":"
      "\"any\"}],\"version\":\"1.0.0\"}");
  host.message(0, "{\"hello\": [1, 2]}");
  host.expectMessage(0, "{\"hello\": [1, 2]}");
  host.message(0, "");
  host.expectMessage(0, "");
}

TEST_CASE("ButtonLed: the LED follows `led`, a debounced press goes out on `button`") {
  Host host(button_led::loop);
  fake::setInput(2, HIGH);  // released: the pull-up holds the pin high
  button_led::setup();
  CHECK(fake::pinModeOf(2) == INPUT_PULLUP);
  CHECK(host.one().type == FrameType::Hello);
  host.message(0, "true");
  CHECK(fake::outputOf(LED_BUILTIN) == HIGH);
  host.message(0, "false");
  CHECK(fake::outputOf(LED_BUILTIN) == LOW);
  host.message(0, "on");
  CHECK(fake::outputOf(LED_BUILTIN) == HIGH);
  CHECK(host.quiet());

  fake::setInput(2, LOW);  // pressed, with a bounce
  button_led::loop();
  fake::advanceMillis(10);
  fake::setInput(2, HIGH);
  button_led::loop();
  fake::setInput(2, LOW);
  button_led::loop();
  fake::advanceMillis(29);
  button_led::loop();
  CHECK(host.quiet());  // not yet stable for 30 ms
  fake::advanceMillis(1);
  button_led::loop();
  host.expectMessage(0, "true");
  fake::setInput(2, HIGH);
  button_led::loop();
  fake::advanceMillis(30);
  button_led::loop();
  host.expectMessage(0, "false");
}

TEST_CASE("Temperature: a reading every interval, timed with millis()") {
  Host host(temperature::loop);
  fake::setMillis(100000);
  fake::setInput(A0, 153);  // 747 mV from a TMP36: 24.7 degrees
  temperature::setup();
  CHECK(host.one().type == FrameType::Hello);
  temperature::loop();
  host.expectMessage(0, "24.7");
  fake::advanceMillis(4999);
  temperature::loop();
  CHECK(host.quiet());
  fake::advanceMillis(1);
  temperature::loop();
  host.expectMessage(0, "24.7");
  host.message(0, "1000");  // a new interval
  host.message(0, "50");    // too short: ignored
  host.message(0, "1e3");   // not a whole number: ignored
  fake::setInput(A0, 0);    // -50 degrees
  fake::advanceMillis(1000);
  temperature::loop();
  host.expectMessage(0, "-50.0");
}
