// A msgflo participant on a microcontroller: component, label, icon, inports with callbacks,
// outports with send, behind a Transport (the serial link, or MQTT over WiFi).
//
// In the spirit of msgflo-arduino (docs/protocol.md 9.3) but buildable for
// an Uno: C++11 without STL, fixed port arrays sized at compile time, a function pointer plus a
// context pointer instead of std::function, constant strings in flash (F("...")), no heap.

#ifndef MSGFLO_PARTICIPANT_H
#define MSGFLO_PARTICIPANT_H

#include <Arduino.h>
#include <stddef.h>
#include <stdint.h>

#include "MsgfloJson.h"
#include "MsgfloLink.h"

namespace msgflo {

class Participant;

// Called with a message's payload bytes (not NUL-terminated) and the context given at
// registration. The payload is valid only during the call.
typedef void (*InportCallback)(const uint8_t* payload, size_t length, void* context);

struct InportSlot {
  FlashText id;
  FlashText type;
  InportCallback callback;
  void* context;
};

struct OutportSlot {
  FlashText id;
  FlashText type;
};

// Members a transport adds to the description for its own protocol (MQTT discovery: the id,
// the role, each port's queue, the period), called while Participant::describe writes it.
class DescriptionExtras {
 public:
  virtual void head(JsonWriter& json) const = 0;                             // before "component"
  virtual void port(JsonWriter& json, bool inport, FlashText id) const = 0;  // in each port
  virtual void tail(JsonWriter& json) const = 0;                             // before the last `}`

 protected:
  ~DescriptionExtras() {}
};

// How a participant reaches the network. A transport describes the participant from its
// tables, delivers incoming messages with Participant::deliver and sends outgoing ones.
class Transport {
 public:
  // Called once by Participant::begin, after all ports are registered.
  virtual void begin(Participant& participant) = 0;
  // Non-blocking: handles what has arrived and returns.
  virtual void loop() = 0;
  // False when the message cannot be sent (too long for the link, not connected).
  virtual bool send(uint8_t outport, const link::ByteSource& payload) = 0;

 protected:
  ~Transport() {}
};

// An outport handle, cheap to copy. A handle from a full port table is invalid: its sends
// return false.
class Outport {
 public:
  Outport() : participant_(0), index_(0) {}
  Outport(Participant* participant, uint8_t index) : participant_(participant), index_(index) {}

  bool valid() const { return participant_ != 0; }
  uint8_t index() const { return index_; }

  // The bytes of a text as they are (not JSON-quoted), like msgflo-arduino's send(char*).
  bool send(const char* text);
  bool send(FlashText text);
  bool sendBytes(const uint8_t* data, size_t length);
  bool send(const link::ByteSource& payload);
  // JSON scalars: 42, 21.50, true / false.
  bool sendInteger(long value);
  bool sendDecimal(float value, uint8_t decimals = 2);
  bool sendBoolean(bool value);
  // A JsonBuffer filled with a JsonWriter; refused (false) if it overflowed.
  bool sendJson(const JsonBufferBase& json);

 private:
  Participant* participant_;
  uint8_t index_;
};

class Participant {
 public:
  // The strings stay where they are (flash): they must live as long as the participant. An
  // empty component is replaced by "MsgfloDevice": a participant never goes without one.
  void setComponent(FlashText component) { component_ = component; }
  void setLabel(FlashText label) { label_ = label; }
  void setIcon(FlashText icon) { icon_ = icon; }
  void setVersion(FlashText version) { version_ = version; }
  // The chip or serial number the sketch reads from the hardware (RAM, copied, up to 16
  // characters), for transports that need a unique id: see writeId().
  void setChipId(const char* chipId);

  // Registers a port; returns false (inport) or an invalid handle (outport) when the table is
  // full or begin() was already called. Port indexes follow registration order.
  bool inport(FlashText id, FlashText type, InportCallback callback, void* context = 0);
  Outport outport(FlashText id, FlashText type);

  void begin(Transport& transport);
  void loop();

  // -- for transports --
  // Runs the inport's callback; false when there is no such inport.
  bool deliver(uint8_t inport, const uint8_t* payload, size_t length);
  bool send(uint8_t outport, const link::ByteSource& payload);
  // The description JSON (docs/serial-link.md 4.3), generated from the port tables, with a
  // transport's extra members (MQTT discovery) when given.
  void describe(JsonWriter& json, const DescriptionExtras* extras = 0) const;
  // The participant's id, the one way ids are written (docs/protocol.md 9.3):
  // `<role>-<chip id>` (the component stands in for a null or empty role), or the role alone
  // without a chip id: never empty.
  void writeId(JsonSink& sink, const char* role = 0) const;
  FlashText component() const;
  FlashText version() const { return version_; }
  uint8_t inportCount() const { return inportCount_; }
  uint8_t outportCount() const { return outportCount_; }
  // A port's id (flash); null past the last port.
  FlashText inportId(uint8_t index) const { return index < inportCount_ ? inports_[index].id : 0; }
  FlashText outportId(uint8_t index) const {
    return index < outportCount_ ? outports_[index].id : 0;
  }

 protected:
  Participant(FlashText component, InportSlot* inports, uint8_t inportCapacity,
              OutportSlot* outports, uint8_t outportCapacity);
  ~Participant() {}

 private:
  FlashText component_;
  FlashText label_;
  FlashText icon_;
  FlashText version_;
  char chipId_[17];
  InportSlot* inports_;
  OutportSlot* outports_;
  uint8_t inportCapacity_;
  uint8_t outportCapacity_;
  uint8_t inportCount_;
  uint8_t outportCount_;
  Transport* transport_;
};

// A participant with room for MaxInports inports and MaxOutports outports (at most 255 each).
template <uint8_t MaxInports, uint8_t MaxOutports>
class StaticParticipant : public Participant {
 public:
  // F() only works inside functions: a global participant gets its component in setup()
  // (setComponent) or from a PROGMEM array (flash(kComponent)).
  explicit StaticParticipant(FlashText component = 0)
      : Participant(component, inports_, MaxInports, outports_, MaxOutports) {}

 private:
  InportSlot inports_[MaxInports ? MaxInports : 1];
  OutportSlot outports_[MaxOutports ? MaxOutports : 1];
};

}  // namespace msgflo

#endif  // MSGFLO_PARTICIPANT_H
