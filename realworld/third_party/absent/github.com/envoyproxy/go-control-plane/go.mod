// Stand-in for a module that is only in the requirement graph of a Debian-built dependency: no
// package of it is built, so the go command only reads this go.mod (see realworld/go.mod).
module github.com/envoyproxy/go-control-plane
