// MsgfloGateway: make a microcontroller a msgflo participant. The one header a sketch includes.
//
//   MsgfloLink.h         the serial link codec (CRC-16, COBS, frames, decoder)
//   MsgfloJson.h         a streaming JSON writer with correct escaping, number formatting
//   MsgfloParticipant.h  Participant, Outport, the Transport interface
//   MsgfloSerial.h       SerialLink: the device side of the serial link over a Stream

#ifndef MSGFLO_H
#define MSGFLO_H

#include "MsgfloJson.h"
#include "MsgfloLink.h"
#include "MsgfloParticipant.h"
#include "MsgfloSerial.h"

#endif  // MSGFLO_H
