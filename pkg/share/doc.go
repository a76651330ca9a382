// Package share is the agent's access to the shared volume, which every
// Job pod can write: each directory is opened without following a link and
// every operation is relative to an open directory, so no link or rename a
// writer plants can send a read, write, rename or removal anywhere else.
package share
