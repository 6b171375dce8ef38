// MsgfloGateway: make a microcontroller a msgflo participant. Every sketch includes this one:
//
//   MsgfloLink.h         the serial link codec (CRC-16, COBS, frames, decoder)
//   MsgfloJson.h         a streaming JSON writer with correct escaping, number formatting
//   MsgfloParticipant.h  Participant, Outport, the Transport interface
//   MsgfloSerial.h       SerialLink: the device side of the serial link over a Stream
//
// and a sketch that needs them includes these too (kept out of this header: the core's
// Client.h, which the MQTT transport needs, gives every file that includes it a static
// IPAddress and its printing code, ~550 B of an Uno's flash that a serial sketch never uses):
//
//   MsgfloMqtt.h         MqttTransport: the participant on an MQTT broker over a Client, and
//                        MsgfloMqttCodec.h, its MQTT 3.1.1 packets (no I/O)
//   MsgfloProvision.h    Provisioning: WiFi and broker credentials over USB (Improv Wi-Fi)
//   MsgfloOok.h          433 MHz OOK codes of remote sockets

#ifndef MSGFLO_H
#define MSGFLO_H

#include "MsgfloJson.h"
#include "MsgfloLink.h"
#include "MsgfloParticipant.h"
#include "MsgfloSerial.h"

#endif  // MSGFLO_H
