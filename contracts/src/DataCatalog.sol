// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IDataCatalog} from "./interfaces/IDataCatalog.sol";
import {DepartmentRegistry} from "./DepartmentRegistry.sol";
import {Resource, ShareType} from "./types/Ledger.sol";

/// @title The data catalog
abstract contract DataCatalog is DepartmentRegistry, IDataCatalog {
    uint64 private _resourceCount;
    mapping(uint64 resourceId => Resource) private _resources;

    /// @inheritdoc IDataCatalog
    function registerResource(bytes32 metadataHash, bytes32 schemaHash, ShareType shareType, uint8 sensitivity)
        external
        returns (uint64 resourceId)
    {
        uint32 owner = _callerDepartment();
        if (metadataHash == bytes32(0)) revert CatalogInvalidMetadata();
        resourceId = ++_resourceCount;
        _resources[resourceId] = Resource({
            owner: owner,
            shareType: shareType,
            sensitivity: sensitivity,
            metadataHash: metadataHash,
            schemaHash: schemaHash
        });
        emit ResourceRegistered(resourceId, owner, shareType, sensitivity, metadataHash, schemaHash);
    }

    /// @inheritdoc IDataCatalog
    function updateResource(
        uint64 resourceId,
        bytes32 metadataHash,
        bytes32 schemaHash,
        ShareType shareType,
        uint8 sensitivity
    ) external {
        Resource storage r = _knownResource(resourceId);
        uint32 caller = _callerDepartment();
        if (r.owner != caller) revert CatalogNotOwner(resourceId, caller);
        if (metadataHash == bytes32(0)) revert CatalogInvalidMetadata();
        r.shareType = shareType;
        r.sensitivity = sensitivity;
        r.metadataHash = metadataHash;
        r.schemaHash = schemaHash;
        emit ResourceUpdated(resourceId, caller, shareType, sensitivity, metadataHash, schemaHash);
    }

    /// @inheritdoc IDataCatalog
    function resource(uint64 resourceId) external view returns (Resource memory) {
        return _knownResource(resourceId);
    }

    /// @inheritdoc IDataCatalog
    function resourceCount() external view returns (uint64) {
        return _resourceCount;
    }

    function _knownResource(uint64 resourceId) internal view returns (Resource storage r) {
        r = _resources[resourceId];
        if (r.owner == 0) revert CatalogUnknownResource(resourceId);
    }
}
