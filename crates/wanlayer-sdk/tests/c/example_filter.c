/*
 * A C vendor filter against wanlayer.h: the callbacks and the calls a kernel driver makes once it
 * has the table (the connection itself, IoGetDeviceObjectPointer and the internal device control,
 * is described at the top of the header; it needs the WDK, this file only the header).
 *
 * `cargo xtask test` compiles it: cc -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only.
 */
#include <string.h>

#include "wanlayer.h"

/* The TCP MSS this example clamps SYNs to. */
#define EXAMPLE_MSS 1360u

typedef struct EXAMPLE_FILTER {
    const WL_PROVIDER_TABLE *Table;
    WL_FILTER_HANDLE Handle;
    volatile uint32_t Revoked;
} EXAMPLE_FILTER;

static EXAMPLE_FILTER Example;

static uint32_t WLAPI ExampleOnLineUp(void *Context, const WL_LINK_INFO *Link)
{
    (void)Context;
    /* Four bytes of room for an encapsulation, never below the IPv4 minimum. */
    return Link->MaximumTotalSize > 576u ? Link->MaximumTotalSize - 4u : 0u;
}

static void WLAPI ExampleOnLineDown(void *Context, const WL_LINK_INFO *Link)
{
    (void)Context;
    (void)Link;
}

/* Clamps the MSS option of an IPv4 TCP SYN without options before it (the common case). */
static uint32_t WLAPI ExampleOnSend(void *Context, WL_PACKET *Packet, const WL_LINK_INFO *Link)
{
    EXAMPLE_FILTER *Filter = (EXAMPLE_FILTER *)Context;
    uint8_t Head[14 + 20 + 24];
    uint32_t Length;
    uint32_t Tcp;
    uint16_t Mss;
    uint32_t Sum;
    uint8_t Bytes[4];

    if (Link->ProtocolType != 0x0800u) {
        return WL_VERDICT_PASS;
    }
    Length = Filter->Table->PacketRead(Packet, 0, Head, sizeof Head);
    if (Length < sizeof Head || (Head[14] & 0x0Fu) != 5u || Head[23] != 6u) {
        return WL_VERDICT_PASS;
    }
    Tcp = 14u + 20u;
    if ((Head[Tcp + 13] & 0x02u) == 0u || Head[Tcp + 20] != 2u || Head[Tcp + 21] != 4u) {
        return WL_VERDICT_PASS;
    }
    Mss = (uint16_t)((Head[Tcp + 22] << 8) | Head[Tcp + 23]);
    if (Mss <= EXAMPLE_MSS) {
        return WL_VERDICT_PASS;
    }
    /* RFC 1624: HC' = ~(~HC + ~m + m'). */
    Sum = (uint16_t)~((Head[Tcp + 16] << 8) | Head[Tcp + 17]);
    Sum += (uint16_t)~Mss;
    Sum += EXAMPLE_MSS;
    Sum = (Sum & 0xFFFFu) + (Sum >> 16);
    Sum = (Sum & 0xFFFFu) + (Sum >> 16);
    Bytes[0] = (uint8_t)(EXAMPLE_MSS >> 8);
    Bytes[1] = (uint8_t)EXAMPLE_MSS;
    if (Filter->Table->PacketWrite(Packet, Tcp + 22, Bytes, 2) != WL_STATUS_SUCCESS) {
        return WL_VERDICT_PASS;
    }
    Bytes[0] = (uint8_t)(~Sum >> 8);
    Bytes[1] = (uint8_t)~Sum;
    (void)Filter->Table->PacketWrite(Packet, Tcp + 16, Bytes, 2);
    return WL_VERDICT_MODIFY;
}

static void WLAPI ExampleOnProviderUnload(void *Context)
{
    ((EXAMPLE_FILTER *)Context)->Revoked = 1u;
}

/* DriverEntry, after the connection: register at altitude 200. */
WL_STATUS ExampleRegister(const WL_PROVIDER_TABLE *Table);
WL_STATUS ExampleRegister(const WL_PROVIDER_TABLE *Table)
{
    WL_FILTER_REGISTRATION Registration;
    static const char Name[] = "example-clamp";

    if (Table->Size < sizeof(WL_PROVIDER_TABLE) || Table->Version != WL_PROVIDER_VERSION) {
        return WL_STATUS_REVISION_MISMATCH;
    }
    memset(&Registration, 0, sizeof Registration);
    Registration.Size = sizeof Registration;
    Registration.Version = WL_PROVIDER_VERSION;
    memcpy(Registration.Name, Name, sizeof Name - 1);
    Registration.Altitude = 200u;
    Registration.Context = &Example;
    Registration.OnLineUp = ExampleOnLineUp;
    Registration.OnLineDown = ExampleOnLineDown;
    Registration.OnSend = ExampleOnSend;
    Registration.OnReceive = NULL;
    Registration.OnProviderUnload = ExampleOnProviderUnload;
    Example.Table = Table;
    return Table->RegisterFilter(Table->Provider, &Registration, &Example.Handle);
}

/* DriverUnload, before ObDereferenceObject of the control device's file object. */
WL_STATUS ExampleDeregister(void);
WL_STATUS ExampleDeregister(void)
{
    if (Example.Revoked) {
        return WL_STATUS_SUCCESS;
    }
    return Example.Table->DeregisterFilter(Example.Table->Provider, Example.Handle);
}

/* Lists the links into a non-paged array. */
uint32_t ExampleCountLinks(WL_LINK_INFO *Links, uint32_t Capacity);
uint32_t ExampleCountLinks(WL_LINK_INFO *Links, uint32_t Capacity)
{
    uint32_t Count = 0;
    WL_STATUS Status = Example.Table->QueryLinks(Example.Table->Provider, Links, Capacity, sizeof(WL_LINK_INFO), &Count);
    return (Status == WL_STATUS_SUCCESS || Status == WL_STATUS_BUFFER_OVERFLOW) ? Count : 0u;
}
