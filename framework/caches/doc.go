// Package caches manages every cache of the framework under one cache
// root: verified downloads (<cache>/downloads, framework/download), locally
// built images (<cache>/images, framework/imagebuild) and saved provisioned
// guests (<cache>/provisioned, framework/provisioned): list them with their
// kind, size and last use, prune them by age and kind, verify them, and
// clean up after interrupted image builds (unmounting what they left
// mounted, never following into it).
package caches
