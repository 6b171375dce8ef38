// The participant and its outport handles; see MsgfloParticipant.h.

#include "MsgfloParticipant.h"

namespace msgflo {

namespace {
const char kDefaultComponent[] PROGMEM = "MsgfloDevice";
const char kComponentKey[] PROGMEM = "component";
const char kLabelKey[] PROGMEM = "label";
const char kIconKey[] PROGMEM = "icon";
const char kInportsKey[] PROGMEM = "inports";
const char kOutportsKey[] PROGMEM = "outports";
const char kVersionKey[] PROGMEM = "version";
const char kIdKey[] PROGMEM = "id";
const char kTypeKey[] PROGMEM = "type";
const char kAnyType[] PROGMEM = "any";
const char kTrue[] PROGMEM = "true";
const char kFalse[] PROGMEM = "false";

bool empty(FlashText text) {
  return text == 0 || flashByte(text, 0) == 0;
}

void optionalMember(JsonWriter& json, const char* key, FlashText value) {
  if (!empty(value)) json.key(flash(key)).string(value);
}

// One port object; `extras` adds the transport's keys (the MQTT queue) before its end.
void writePort(JsonWriter& json, FlashText id, FlashText type, bool inport,
               const DescriptionExtras* extras) {
  json.beginObject();
  json.key(flash(kIdKey)).string(id);
  json.key(flash(kTypeKey)).string(empty(type) ? flash(kAnyType) : type);
  if (extras) extras->port(json, inport, id);
  json.endObject();
}
}  // namespace

// -- Outport -----------------------------------------------------------------------------------

bool Outport::send(const link::ByteSource& payload) {
  return participant_ != 0 && participant_->send(index_, payload);
}

bool Outport::sendBytes(const uint8_t* data, size_t length) {
  return send(link::RamBytes(data, length));
}

bool Outport::send(const char* text) {
  return sendBytes(reinterpret_cast<const uint8_t*>(text), text ? strlen(text) : 0);
}

bool Outport::send(FlashText text) {
  return send(link::ProgmemBytes(reinterpret_cast<const uint8_t*>(text), flashLength(text)));
}

bool Outport::sendInteger(long value) {
  char text[kNumberTextSize];
  return sendBytes(reinterpret_cast<const uint8_t*>(text), formatInteger(value, text));
}

bool Outport::sendDecimal(float value, uint8_t decimals) {
  char text[kNumberTextSize];
  return sendBytes(reinterpret_cast<const uint8_t*>(text), formatDecimal(value, decimals, text));
}

bool Outport::sendBoolean(bool value) {
  return send(value ? "true" : "false");
}

bool Outport::sendJson(const JsonBufferBase& json) {
  return !json.overflowed() && send(json);
}

// -- Participant -------------------------------------------------------------------------------

Participant::Participant(FlashText component, InportSlot* inports, uint8_t inportCapacity,
                         OutportSlot* outports, uint8_t outportCapacity)
    : component_(component),
      label_(0),
      icon_(0),
      version_(0),
      inports_(inports),
      outports_(outports),
      inportCapacity_(inportCapacity),
      outportCapacity_(outportCapacity),
      inportCount_(0),
      outportCount_(0),
      transport_(0) {
  chipId_[0] = 0;
}

void Participant::setChipId(const char* chipId) {
  size_t length = 0;
  while (chipId && chipId[length] && length < sizeof chipId_ - 1) {
    chipId_[length] = chipId[length];
    ++length;
  }
  chipId_[length] = 0;
}

FlashText Participant::component() const {
  return empty(component_) ? flash(kDefaultComponent) : component_;
}

bool Participant::inport(FlashText id, FlashText type, InportCallback callback, void* context) {
  if (transport_ || inportCount_ == inportCapacity_ || empty(id)) return false;
  InportSlot& slot = inports_[inportCount_++];
  slot.id = id;
  slot.type = type;
  slot.callback = callback;
  slot.context = context;
  return true;
}

Outport Participant::outport(FlashText id, FlashText type) {
  if (transport_ || outportCount_ == outportCapacity_ || empty(id)) return Outport();
  OutportSlot& slot = outports_[outportCount_];
  slot.id = id;
  slot.type = type;
  return Outport(this, outportCount_++);
}

void Participant::begin(Transport& transport) {
  transport_ = &transport;
  transport.begin(*this);
}

void Participant::loop() {
  if (transport_) transport_->loop();
}

bool Participant::deliver(uint8_t inport, const uint8_t* payload, size_t length) {
  if (inport >= inportCount_) return false;
  const InportSlot& slot = inports_[inport];
  if (slot.callback) slot.callback(payload, length, slot.context);
  return true;
}

bool Participant::send(uint8_t outport, const link::ByteSource& payload) {
  return transport_ != 0 && outport < outportCount_ && transport_->send(outport, payload);
}

void Participant::describe(JsonWriter& json, const DescriptionExtras* extras) const {
  json.beginObject();
  if (extras) extras->head(json);
  json.key(flash(kComponentKey)).string(component());
  optionalMember(json, kLabelKey, label_);
  optionalMember(json, kIconKey, icon_);
  // One loop for both lists: 30 B less on an AVR than two, and ButtonLed must fit in 8 KB.
  for (uint8_t list = 0; list < 2; ++list) {
    const bool in = list == 0;
    json.key(flash(in ? kInportsKey : kOutportsKey)).beginArray();
    const uint8_t count = in ? inportCount_ : outportCount_;
    for (uint8_t i = 0; i < count; ++i) {
      const FlashText id = in ? inports_[i].id : outports_[i].id;
      writePort(json, id, in ? inports_[i].type : outports_[i].type, in, extras);
    }
    json.endArray();
  }
  optionalMember(json, kVersionKey, version_);
  if (extras) extras->tail(json);
  json.endObject();
}

void Participant::writeId(JsonSink& sink, const char* role) const {
  if (role && *role) {
    for (const char* c = role; *c; ++c) sink.put(*c);
  } else {
    const FlashText name = component();
    for (size_t i = 0; flashByte(name, i) != 0; ++i) {
      sink.put(static_cast<char>(flashByte(name, i)));
    }
  }
  if (chipId_[0] == 0) return;
  sink.put('-');
  for (const char* c = chipId_; *c; ++c) sink.put(*c);
}

}  // namespace msgflo
