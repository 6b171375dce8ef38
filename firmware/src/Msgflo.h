// MsgfloGateway: make a microcontroller a msgflo participant. The one header a sketch includes.
//
//   MsgfloLink.h         the serial link codec (CRC-16, COBS, frames, decoder)
//   MsgfloJson.h         a streaming JSON writer with correct escaping, number formatting
//   MsgfloParticipant.h  Participant, Outport, the Transport interface
//   MsgfloSerial.h       SerialLink: the device side of the serial link over a Stream
//   MsgfloMqttCodec.h    MQTT 3.1.1 packets: encoders and a streaming decoder, no I/O
//   MsgfloMqtt.h         MqttTransport: the participant on an MQTT broker over a Client

#ifndef MSGFLO_H
#define MSGFLO_H

#include "MsgfloJson.h"
#include "MsgfloLink.h"
#include "MsgfloMqtt.h"
#include "MsgfloMqttCodec.h"
#include "MsgfloParticipant.h"
#include "MsgfloSerial.h"

#endif  // MSGFLO_H
