// The device side of the msgflo-gateway serial link (docs/serial-link.md) as a Transport over
// any Arduino Stream: a hello at start, paged description replies streamed from the
// participant's tables, pongs with the receive error counters, port messages both ways, error
// frames for what it cannot take. The gateway's serial bridge does the rest (role, id, queues,
// discovery, liveness).

#ifndef MSGFLO_SERIAL_H
#define MSGFLO_SERIAL_H

#include <Arduino.h>

#include "MsgfloLink.h"
#include "MsgfloParticipant.h"

namespace msgflo {

#if defined(__AVR__)
// An ATmega328P has a 64-byte receive ring: a 60-byte frame fits it whole (spec section 6).
const size_t kDefaultMaxFrame = link::kAvrMaxFrame;
#else
const size_t kDefaultMaxFrame = link::kMaxFrame;
#endif

class SerialLinkTransport : public Transport {
 public:
  // The decoder's capacity is the max_frame the hello states; its buffer also holds each
  // description slice while it is sent (capacity - 8 bytes of JSON per reply), so there is no
  // transmit buffer. Both must outlive the transport.
  SerialLinkTransport(Stream& stream, link::LinkDecoder& decoder)
      : stream_(stream), decoder_(decoder), participant_(0), seq_(0) {}

  void begin(Participant& participant) override;  // sends the hello
  void loop() override;                           // reads what is available, never waits
  bool send(uint8_t outport, const link::ByteSource& payload) override;

  // Sends the hello again (the host then describes the device afresh).
  void sendHello();
  // An unsolicited error frame; codes 0x80..0xFF are the application's. `text` may be null.
  bool sendError(uint8_t code, FlashText text);
  // The receive error counters the pongs report.
  const link::ErrorCounters& counters() const { return decoder_.counters(); }

 private:
  void handleFrame(const link::Frame& frame);
  void handleError();
  void reply(uint8_t seq, uint16_t offset);
  void replyError(uint8_t seq, link::DeviceErrorCode code);
  bool write(bool built);  // frame_, if it was built

  Stream& stream_;
  link::LinkDecoder& decoder_;
  Participant* participant_;
  uint8_t seq_;  // the counter of device-initiated frames
  // The frame being sent. One for all: a frame is written out before the next is built, also
  // when an inport callback sends while a received message is being handled.
  link::FrameBytes frame_;
};

// A serial link transport with its own decoder of MaxFrame bytes.
template <size_t MaxFrame = kDefaultMaxFrame>
class SerialLink : public SerialLinkTransport {
 public:
  explicit SerialLink(Stream& stream)
      : SerialLinkTransport(stream, decoder_), decoder_(link::parseDeviceBody) {}

 private:
  link::StaticLinkDecoder<MaxFrame> decoder_;
};

}  // namespace msgflo

#endif  // MSGFLO_SERIAL_H
