/* slotproxy - BSD-2-Clause
 *
 * Redis Cluster key hashing: CRC16-XMODEM mod 16384 with the {hash tag}
 * rule. Pure functions.
 */
#ifndef SP_KEYSLOT_H
#define SP_KEYSLOT_H

#include <stddef.h>
#include <stdint.h>

#define SLOT_COUNT 16384

uint16_t crc16_xmodem(const char *buf, size_t len);
/* Slot of a key: only the bytes between the first '{' and the first '}'
 * after it are hashed, when there is at least one byte between them. */
uint16_t keyslot(const char *key, size_t len);

#endif
