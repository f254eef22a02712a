# Generated from matchcore/itch/layouts.py by layouts.render_pxd(); do not edit by hand.
# Regenerate: python -m matchcore.itch.layouts > src/matchcore/itch/_messages.pxd
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy

cdef extern from "mc_endian.h" nogil:
    uint16_t mc_be16(const uint8_t* p)
    uint32_t mc_be32(const uint8_t* p)
    uint64_t mc_be48(const uint8_t* p)
    uint64_t mc_be64(const uint8_t* p)

# 'S': 12 bytes
cdef struct itch_system_event:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    char event_code

# 'R': 39 bytes
cdef struct itch_stock_directory:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    char stock[8]
    char market_category
    char financial_status_indicator
    uint32_t round_lot_size
    char round_lots_only
    char issue_classification
    char issue_sub_type[2]
    char authenticity
    char short_sale_threshold_indicator
    char ipo_flag
    char luld_reference_price_tier
    char etp_flag
    uint32_t etp_leverage_factor
    char inverse_indicator

# 'H': 25 bytes
cdef struct itch_stock_trading_action:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    char stock[8]
    char trading_state
    char reserved
    char reason[4]

# 'Y': 20 bytes
cdef struct itch_reg_sho_restriction:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    char stock[8]
    char reg_sho_action

# 'L': 26 bytes
cdef struct itch_market_participant_position:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    char mpid[4]
    char stock[8]
    char primary_market_maker
    char market_maker_mode
    char market_participant_state

# 'V': 35 bytes
cdef struct itch_mwcb_decline_level:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    uint64_t level_1
    uint64_t level_2
    uint64_t level_3

# 'W': 12 bytes
cdef struct itch_mwcb_status:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    char breached_level

# 'K': 28 bytes
cdef struct itch_ipo_quoting_period_update:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    char stock[8]
    uint32_t ipo_quotation_release_time
    char ipo_quotation_release_qualifier
    uint32_t ipo_price

# 'J': 35 bytes
cdef struct itch_luld_auction_collar:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    char stock[8]
    uint32_t auction_collar_reference_price
    uint32_t upper_auction_collar_price
    uint32_t lower_auction_collar_price
    uint32_t auction_collar_extension

# 'h': 21 bytes
cdef struct itch_operational_halt:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    char stock[8]
    char market_code
    char operational_halt_action

# 'A': 36 bytes
cdef struct itch_add_order:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    uint64_t order_reference_number
    char buy_sell_indicator
    uint32_t shares
    char stock[8]
    uint32_t price

# 'F': 40 bytes
cdef struct itch_add_order_mpid:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    uint64_t order_reference_number
    char buy_sell_indicator
    uint32_t shares
    char stock[8]
    uint32_t price
    char attribution[4]

# 'E': 31 bytes
cdef struct itch_order_executed:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    uint64_t order_reference_number
    uint32_t executed_shares
    uint64_t match_number

# 'C': 36 bytes
cdef struct itch_order_executed_with_price:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    uint64_t order_reference_number
    uint32_t executed_shares
    uint64_t match_number
    char printable
    uint32_t execution_price

# 'X': 23 bytes
cdef struct itch_order_cancel:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    uint64_t order_reference_number
    uint32_t cancelled_shares

# 'D': 19 bytes
cdef struct itch_order_delete:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    uint64_t order_reference_number

# 'U': 35 bytes
cdef struct itch_order_replace:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    uint64_t original_order_reference_number
    uint64_t new_order_reference_number
    uint32_t shares
    uint32_t price

# 'P': 44 bytes
cdef struct itch_trade:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    uint64_t order_reference_number
    char buy_sell_indicator
    uint32_t shares
    char stock[8]
    uint32_t price
    uint64_t match_number

# 'Q': 40 bytes
cdef struct itch_cross_trade:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    uint64_t shares
    char stock[8]
    uint32_t cross_price
    uint64_t match_number
    char cross_type

# 'B': 19 bytes
cdef struct itch_broken_trade:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    uint64_t match_number

# 'I': 50 bytes
cdef struct itch_noii:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    uint64_t paired_shares
    uint64_t imbalance_shares
    char imbalance_direction
    char stock[8]
    uint32_t far_price
    uint32_t near_price
    uint32_t current_reference_price
    char cross_type
    char price_variation_indicator

# 'N': 20 bytes
cdef struct itch_rpii:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    char stock[8]
    char interest_flag

# 'O': 48 bytes
cdef struct itch_dlcr_price_discovery:
    char message_type
    uint16_t stock_locate
    uint16_t tracking_number
    uint64_t timestamp
    char stock[8]
    char open_eligibility_status
    uint32_t minimum_allowable_price
    uint32_t maximum_allowable_price
    uint32_t near_execution_price
    uint64_t near_execution_time
    uint32_t lower_price_range_collar
    uint32_t upper_price_range_collar

cdef inline void itch_decode_system_event(const uint8_t* p, itch_system_event* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    m.event_code = <char>p[11]

cdef inline void itch_decode_stock_directory(const uint8_t* p, itch_stock_directory* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    memcpy(m.stock, p + 11, 8)
    m.market_category = <char>p[19]
    m.financial_status_indicator = <char>p[20]
    m.round_lot_size = mc_be32(p + 21)
    m.round_lots_only = <char>p[25]
    m.issue_classification = <char>p[26]
    memcpy(m.issue_sub_type, p + 27, 2)
    m.authenticity = <char>p[29]
    m.short_sale_threshold_indicator = <char>p[30]
    m.ipo_flag = <char>p[31]
    m.luld_reference_price_tier = <char>p[32]
    m.etp_flag = <char>p[33]
    m.etp_leverage_factor = mc_be32(p + 34)
    m.inverse_indicator = <char>p[38]

cdef inline void itch_decode_stock_trading_action(const uint8_t* p, itch_stock_trading_action* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    memcpy(m.stock, p + 11, 8)
    m.trading_state = <char>p[19]
    m.reserved = <char>p[20]
    memcpy(m.reason, p + 21, 4)

cdef inline void itch_decode_reg_sho_restriction(const uint8_t* p, itch_reg_sho_restriction* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    memcpy(m.stock, p + 11, 8)
    m.reg_sho_action = <char>p[19]

cdef inline void itch_decode_market_participant_position(const uint8_t* p, itch_market_participant_position* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    memcpy(m.mpid, p + 11, 4)
    memcpy(m.stock, p + 15, 8)
    m.primary_market_maker = <char>p[23]
    m.market_maker_mode = <char>p[24]
    m.market_participant_state = <char>p[25]

cdef inline void itch_decode_mwcb_decline_level(const uint8_t* p, itch_mwcb_decline_level* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    m.level_1 = mc_be64(p + 11)
    m.level_2 = mc_be64(p + 19)
    m.level_3 = mc_be64(p + 27)

cdef inline void itch_decode_mwcb_status(const uint8_t* p, itch_mwcb_status* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    m.breached_level = <char>p[11]

cdef inline void itch_decode_ipo_quoting_period_update(const uint8_t* p, itch_ipo_quoting_period_update* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    memcpy(m.stock, p + 11, 8)
    m.ipo_quotation_release_time = mc_be32(p + 19)
    m.ipo_quotation_release_qualifier = <char>p[23]
    m.ipo_price = mc_be32(p + 24)

cdef inline void itch_decode_luld_auction_collar(const uint8_t* p, itch_luld_auction_collar* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    memcpy(m.stock, p + 11, 8)
    m.auction_collar_reference_price = mc_be32(p + 19)
    m.upper_auction_collar_price = mc_be32(p + 23)
    m.lower_auction_collar_price = mc_be32(p + 27)
    m.auction_collar_extension = mc_be32(p + 31)

cdef inline void itch_decode_operational_halt(const uint8_t* p, itch_operational_halt* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    memcpy(m.stock, p + 11, 8)
    m.market_code = <char>p[19]
    m.operational_halt_action = <char>p[20]

cdef inline void itch_decode_add_order(const uint8_t* p, itch_add_order* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    m.order_reference_number = mc_be64(p + 11)
    m.buy_sell_indicator = <char>p[19]
    m.shares = mc_be32(p + 20)
    memcpy(m.stock, p + 24, 8)
    m.price = mc_be32(p + 32)

cdef inline void itch_decode_add_order_mpid(const uint8_t* p, itch_add_order_mpid* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    m.order_reference_number = mc_be64(p + 11)
    m.buy_sell_indicator = <char>p[19]
    m.shares = mc_be32(p + 20)
    memcpy(m.stock, p + 24, 8)
    m.price = mc_be32(p + 32)
    memcpy(m.attribution, p + 36, 4)

cdef inline void itch_decode_order_executed(const uint8_t* p, itch_order_executed* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    m.order_reference_number = mc_be64(p + 11)
    m.executed_shares = mc_be32(p + 19)
    m.match_number = mc_be64(p + 23)

cdef inline void itch_decode_order_executed_with_price(const uint8_t* p, itch_order_executed_with_price* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    m.order_reference_number = mc_be64(p + 11)
    m.executed_shares = mc_be32(p + 19)
    m.match_number = mc_be64(p + 23)
    m.printable = <char>p[31]
    m.execution_price = mc_be32(p + 32)

cdef inline void itch_decode_order_cancel(const uint8_t* p, itch_order_cancel* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    m.order_reference_number = mc_be64(p + 11)
    m.cancelled_shares = mc_be32(p + 19)

cdef inline void itch_decode_order_delete(const uint8_t* p, itch_order_delete* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    m.order_reference_number = mc_be64(p + 11)

cdef inline void itch_decode_order_replace(const uint8_t* p, itch_order_replace* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    m.original_order_reference_number = mc_be64(p + 11)
    m.new_order_reference_number = mc_be64(p + 19)
    m.shares = mc_be32(p + 27)
    m.price = mc_be32(p + 31)

cdef inline void itch_decode_trade(const uint8_t* p, itch_trade* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    m.order_reference_number = mc_be64(p + 11)
    m.buy_sell_indicator = <char>p[19]
    m.shares = mc_be32(p + 20)
    memcpy(m.stock, p + 24, 8)
    m.price = mc_be32(p + 32)
    m.match_number = mc_be64(p + 36)

cdef inline void itch_decode_cross_trade(const uint8_t* p, itch_cross_trade* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    m.shares = mc_be64(p + 11)
    memcpy(m.stock, p + 19, 8)
    m.cross_price = mc_be32(p + 27)
    m.match_number = mc_be64(p + 31)
    m.cross_type = <char>p[39]

cdef inline void itch_decode_broken_trade(const uint8_t* p, itch_broken_trade* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    m.match_number = mc_be64(p + 11)

cdef inline void itch_decode_noii(const uint8_t* p, itch_noii* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    m.paired_shares = mc_be64(p + 11)
    m.imbalance_shares = mc_be64(p + 19)
    m.imbalance_direction = <char>p[27]
    memcpy(m.stock, p + 28, 8)
    m.far_price = mc_be32(p + 36)
    m.near_price = mc_be32(p + 40)
    m.current_reference_price = mc_be32(p + 44)
    m.cross_type = <char>p[48]
    m.price_variation_indicator = <char>p[49]

cdef inline void itch_decode_rpii(const uint8_t* p, itch_rpii* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    memcpy(m.stock, p + 11, 8)
    m.interest_flag = <char>p[19]

cdef inline void itch_decode_dlcr_price_discovery(const uint8_t* p, itch_dlcr_price_discovery* m) noexcept nogil:
    m.message_type = <char>p[0]
    m.stock_locate = mc_be16(p + 1)
    m.tracking_number = mc_be16(p + 3)
    m.timestamp = mc_be48(p + 5)
    memcpy(m.stock, p + 11, 8)
    m.open_eligibility_status = <char>p[19]
    m.minimum_allowable_price = mc_be32(p + 20)
    m.maximum_allowable_price = mc_be32(p + 24)
    m.near_execution_price = mc_be32(p + 28)
    m.near_execution_time = mc_be64(p + 32)
    m.lower_price_range_collar = mc_be32(p + 40)
    m.upper_price_range_collar = mc_be32(p + 44)

cdef inline int itch_length(uint8_t t) noexcept nogil:
    """Wire length of a message type (type byte included); 0 for an unknown type."""
    if t == 83:  # 'S'
        return 12
    elif t == 82:  # 'R'
        return 39
    elif t == 72:  # 'H'
        return 25
    elif t == 89:  # 'Y'
        return 20
    elif t == 76:  # 'L'
        return 26
    elif t == 86:  # 'V'
        return 35
    elif t == 87:  # 'W'
        return 12
    elif t == 75:  # 'K'
        return 28
    elif t == 74:  # 'J'
        return 35
    elif t == 104:  # 'h'
        return 21
    elif t == 65:  # 'A'
        return 36
    elif t == 70:  # 'F'
        return 40
    elif t == 69:  # 'E'
        return 31
    elif t == 67:  # 'C'
        return 36
    elif t == 88:  # 'X'
        return 23
    elif t == 68:  # 'D'
        return 19
    elif t == 85:  # 'U'
        return 35
    elif t == 80:  # 'P'
        return 44
    elif t == 81:  # 'Q'
        return 40
    elif t == 66:  # 'B'
        return 19
    elif t == 73:  # 'I'
        return 50
    elif t == 78:  # 'N'
        return 20
    elif t == 79:  # 'O'
        return 48
    return 0

cdef inline size_t itch_struct_size(uint8_t t) noexcept nogil:
    if t == 83:
        return sizeof(itch_system_event)
    elif t == 82:
        return sizeof(itch_stock_directory)
    elif t == 72:
        return sizeof(itch_stock_trading_action)
    elif t == 89:
        return sizeof(itch_reg_sho_restriction)
    elif t == 76:
        return sizeof(itch_market_participant_position)
    elif t == 86:
        return sizeof(itch_mwcb_decline_level)
    elif t == 87:
        return sizeof(itch_mwcb_status)
    elif t == 75:
        return sizeof(itch_ipo_quoting_period_update)
    elif t == 74:
        return sizeof(itch_luld_auction_collar)
    elif t == 104:
        return sizeof(itch_operational_halt)
    elif t == 65:
        return sizeof(itch_add_order)
    elif t == 70:
        return sizeof(itch_add_order_mpid)
    elif t == 69:
        return sizeof(itch_order_executed)
    elif t == 67:
        return sizeof(itch_order_executed_with_price)
    elif t == 88:
        return sizeof(itch_order_cancel)
    elif t == 68:
        return sizeof(itch_order_delete)
    elif t == 85:
        return sizeof(itch_order_replace)
    elif t == 80:
        return sizeof(itch_trade)
    elif t == 81:
        return sizeof(itch_cross_trade)
    elif t == 66:
        return sizeof(itch_broken_trade)
    elif t == 73:
        return sizeof(itch_noii)
    elif t == 78:
        return sizeof(itch_rpii)
    elif t == 79:
        return sizeof(itch_dlcr_price_discovery)
    return 0

cdef inline void itch_decode_any(uint8_t t, const uint8_t* p, void* out) noexcept nogil:
    """Decode a message of known type t at p into the struct at out."""
    if t == 83:
        itch_decode_system_event(p, <itch_system_event*>out)
    elif t == 82:
        itch_decode_stock_directory(p, <itch_stock_directory*>out)
    elif t == 72:
        itch_decode_stock_trading_action(p, <itch_stock_trading_action*>out)
    elif t == 89:
        itch_decode_reg_sho_restriction(p, <itch_reg_sho_restriction*>out)
    elif t == 76:
        itch_decode_market_participant_position(p, <itch_market_participant_position*>out)
    elif t == 86:
        itch_decode_mwcb_decline_level(p, <itch_mwcb_decline_level*>out)
    elif t == 87:
        itch_decode_mwcb_status(p, <itch_mwcb_status*>out)
    elif t == 75:
        itch_decode_ipo_quoting_period_update(p, <itch_ipo_quoting_period_update*>out)
    elif t == 74:
        itch_decode_luld_auction_collar(p, <itch_luld_auction_collar*>out)
    elif t == 104:
        itch_decode_operational_halt(p, <itch_operational_halt*>out)
    elif t == 65:
        itch_decode_add_order(p, <itch_add_order*>out)
    elif t == 70:
        itch_decode_add_order_mpid(p, <itch_add_order_mpid*>out)
    elif t == 69:
        itch_decode_order_executed(p, <itch_order_executed*>out)
    elif t == 67:
        itch_decode_order_executed_with_price(p, <itch_order_executed_with_price*>out)
    elif t == 88:
        itch_decode_order_cancel(p, <itch_order_cancel*>out)
    elif t == 68:
        itch_decode_order_delete(p, <itch_order_delete*>out)
    elif t == 85:
        itch_decode_order_replace(p, <itch_order_replace*>out)
    elif t == 80:
        itch_decode_trade(p, <itch_trade*>out)
    elif t == 81:
        itch_decode_cross_trade(p, <itch_cross_trade*>out)
    elif t == 66:
        itch_decode_broken_trade(p, <itch_broken_trade*>out)
    elif t == 73:
        itch_decode_noii(p, <itch_noii*>out)
    elif t == 78:
        itch_decode_rpii(p, <itch_rpii*>out)
    elif t == 79:
        itch_decode_dlcr_price_discovery(p, <itch_dlcr_price_discovery*>out)
