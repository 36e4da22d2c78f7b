// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Resource, ShareType} from "../types/Ledger.sol";

/// @title The data catalog: each department's data resources and how they may be shared
interface IDataCatalog {
    /// @notice Thrown when a resource id was never registered.
    error CatalogUnknownResource(uint64 resourceId);
    /// @notice Thrown when a department other than the owner changes a resource.
    error CatalogNotOwner(uint64 resourceId, uint32 departmentId);
    /// @notice Thrown when a resource's metadata hash is empty.
    error CatalogInvalidMetadata();

    /// @notice A department catalogued a data resource.
    /// @param resourceId Sequential id, starting at 1.
    /// @param owner The owning (providing) department.
    /// @param shareType Unconditional, conditional or not shared.
    /// @param sensitivity Sensitivity level (0 = public, higher is more sensitive).
    /// @param metadataHash Hash of the resource's metadata document (name, fields, update frequency).
    /// @param schemaHash Hash of the data schema.
    event ResourceRegistered(
        uint64 indexed resourceId,
        uint32 indexed owner,
        ShareType shareType,
        uint8 sensitivity,
        bytes32 metadataHash,
        bytes32 schemaHash
    );
    /// @notice The owner changed a resource's entry; the fields are the new values.
    /// @param resourceId The resource.
    /// @param owner The owning department.
    /// @param shareType New share type.
    /// @param sensitivity New sensitivity level.
    /// @param metadataHash New metadata hash.
    /// @param schemaHash New schema hash.
    event ResourceUpdated(
        uint64 indexed resourceId,
        uint32 indexed owner,
        ShareType shareType,
        uint8 sensitivity,
        bytes32 metadataHash,
        bytes32 schemaHash
    );

    /// @notice Catalogues a data resource owned by the calling department.
    /// @dev Requirements: caller is an active department's signer; `metadataHash` is not zero.
    /// Emits {ResourceRegistered}.
    /// @return resourceId The new resource's id.
    function registerResource(bytes32 metadataHash, bytes32 schemaHash, ShareType shareType, uint8 sensitivity)
        external
        returns (uint64 resourceId);

    /// @notice Changes a resource's entry. Existing agreements keep the terms they were signed under.
    /// @dev Requirements: caller is the owner's signer and the owner is active; `metadataHash` is not zero.
    /// Emits {ResourceUpdated}.
    function updateResource(
        uint64 resourceId,
        bytes32 metadataHash,
        bytes32 schemaHash,
        ShareType shareType,
        uint8 sensitivity
    ) external;

    /// @notice Returns a resource; reverts with {CatalogUnknownResource} for an unknown id.
    function resource(uint64 resourceId) external view returns (Resource memory);

    /// @notice Number of resources registered so far (ids run from 1 to this value).
    function resourceCount() external view returns (uint64);
}
