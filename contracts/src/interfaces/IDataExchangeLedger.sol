// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IDepartmentRegistry} from "./IDepartmentRegistry.sol";
import {IDataCatalog} from "./IDataCatalog.sol";
import {ISharingAgreements} from "./ISharingAgreements.sol";
import {IDeliveryLedger} from "./IDeliveryLedger.sol";

/// @title dxl — the Data Exchange Ledger
/// @notice Membership, catalog, agreements, grants and delivery receipts of one consortium of departments.
interface IDataExchangeLedger is IDepartmentRegistry, IDataCatalog, ISharingAgreements, IDeliveryLedger {}
