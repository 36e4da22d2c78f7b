// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {DepartmentRegistry} from "./DepartmentRegistry.sol";
import {DeliveryLedger} from "./DeliveryLedger.sol";
import {IDataExchangeLedger} from "./interfaces/IDataExchangeLedger.sol";

/// @title dxl — the Data Exchange Ledger
/// @notice One deployment serves one consortium: its governors (M-of-N), departments, catalog, agreements, grants
/// and delivery receipts. Every state change emits an event from which the whole history can be rebuilt.
/// @dev The modules are abstract contracts composed here so that deliveries read grants, agreements and
/// departments from local storage: a call into another contract would cost more than a delivery's gas budget.
contract DataExchangeLedger is DeliveryLedger, IDataExchangeLedger {
    /// @param governors The initial governors.
    /// @param threshold_ Approvals a proposal needs (1 <= threshold_ <= governors.length).
    constructor(address[] memory governors, uint8 threshold_)
        DepartmentRegistry(governors, threshold_)
        EIP712("dxl Data Exchange Ledger", "1")
    {}
}
