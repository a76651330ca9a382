// Package images builds the test images without Docker: the agent and
// runner images (same paths, user and entrypoints as Dockerfile.agent and
// Dockerfile.runner), a pause image for the nodes' sandboxes, and a
// stand-in for the Mage server image with a scriptable block command.
package images
