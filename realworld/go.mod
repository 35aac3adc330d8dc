module example.com/realworld

go 1.21

require (
	github.com/gomodule/redigo v1.8.3
	github.com/jackc/pgx/v4 v4.15.0
	github.com/lib/pq v1.10.7
	github.com/mattn/go-sqlite3 v1.14.16
	golang.org/x/sync v0.1.0
	google.golang.org/grpc v1.33.3
)

// Versions here are what minimal version selection picks from the requirement graph; the code
// built is Debian's (see the replace block), e.g. github.com/golang/protobuf is Debian's 1.3.5.
require (
	github.com/golang/protobuf v1.4.1 // indirect
	github.com/jackc/chunkreader/v2 v2.0.1 // indirect
	github.com/jackc/pgconn v1.11.0 // indirect
	github.com/jackc/pgio v1.0.0 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgproto3/v2 v2.2.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20200714003250-2b9c44734f2b // indirect
	github.com/jackc/pgtype v1.10.0 // indirect
	github.com/jackc/puddle v1.2.1 // indirect
	golang.org/x/crypto v0.4.0 // indirect
	golang.org/x/net v0.7.0 // indirect
	golang.org/x/sys v0.5.0 // indirect
	golang.org/x/text v0.7.0 // indirect
	google.golang.org/genproto v0.0.0-20200526211855-cb27e3aa2013 // indirect
)

// Every module that provides a package is built from Debian's source in /usr/share/gocode/src
// (scripts/install-realworld.sh installs it). No module proxy, no go.sum: directory replacements
// are not checksummed.
replace (
	github.com/golang/protobuf => /usr/share/gocode/src/github.com/golang/protobuf
	github.com/gomodule/redigo => /usr/share/gocode/src/github.com/gomodule/redigo
	github.com/jackc/chunkreader/v2 => /usr/share/gocode/src/github.com/jackc/chunkreader/v2
	github.com/jackc/pgconn => /usr/share/gocode/src/github.com/jackc/pgconn
	github.com/jackc/pgio => /usr/share/gocode/src/github.com/jackc/pgio
	github.com/jackc/pgpassfile => /usr/share/gocode/src/github.com/jackc/pgpassfile
	github.com/jackc/pgproto3/v2 => /usr/share/gocode/src/github.com/jackc/pgproto3/v2
	github.com/jackc/pgservicefile => /usr/share/gocode/src/github.com/jackc/pgservicefile
	github.com/jackc/pgtype => /usr/share/gocode/src/github.com/jackc/pgtype
	github.com/jackc/pgx/v4 => /usr/share/gocode/src/github.com/jackc/pgx/v4
	github.com/jackc/puddle => /usr/share/gocode/src/github.com/jackc/puddle
	github.com/lib/pq => /usr/share/gocode/src/github.com/lib/pq
	github.com/mattn/go-sqlite3 => /usr/share/gocode/src/github.com/mattn/go-sqlite3
	golang.org/x/crypto => /usr/share/gocode/src/golang.org/x/crypto
	golang.org/x/net => /usr/share/gocode/src/golang.org/x/net
	golang.org/x/sync => /usr/share/gocode/src/golang.org/x/sync
	golang.org/x/sys => /usr/share/gocode/src/golang.org/x/sys
	golang.org/x/text => /usr/share/gocode/src/golang.org/x/text
	google.golang.org/genproto => /usr/share/gocode/src/google.golang.org/genproto
	google.golang.org/grpc => /usr/share/gocode/src/google.golang.org/grpc
)

// Modules that only appear in the requirement graph (the go.mod files of the modules above, most
// of them still at go < 1.17, so their graphs are not pruned) and provide no package that is
// built: the go command reads their go.mod and nothing else, so each is replaced by a directory
// holding only a go.mod (third_party/absent/).
replace (
	github.com/Masterminds/semver/v3 => ./third_party/absent/github.com/Masterminds/semver/v3
	github.com/cncf/udpa/go => ./third_party/absent/github.com/cncf/udpa/go
	github.com/cockroachdb/apd => ./third_party/absent/github.com/cockroachdb/apd
	github.com/envoyproxy/go-control-plane => ./third_party/absent/github.com/envoyproxy/go-control-plane
	github.com/go-kit/log => ./third_party/absent/github.com/go-kit/log
	github.com/gofrs/uuid => ./third_party/absent/github.com/gofrs/uuid
	github.com/golang/glog => ./third_party/absent/github.com/golang/glog
	github.com/google/go-cmp => ./third_party/absent/github.com/google/go-cmp
	github.com/google/uuid => ./third_party/absent/github.com/google/uuid
	github.com/jackc/pgmock => ./third_party/absent/github.com/jackc/pgmock
	github.com/rs/zerolog => ./third_party/absent/github.com/rs/zerolog
	github.com/shopspring/decimal => ./third_party/absent/github.com/shopspring/decimal
	github.com/sirupsen/logrus => ./third_party/absent/github.com/sirupsen/logrus
	github.com/stretchr/testify => ./third_party/absent/github.com/stretchr/testify
	go.uber.org/zap => ./third_party/absent/go.uber.org/zap
	golang.org/x/lint => ./third_party/absent/golang.org/x/lint
	golang.org/x/mod => ./third_party/absent/golang.org/x/mod
	golang.org/x/oauth2 => ./third_party/absent/golang.org/x/oauth2
	golang.org/x/term => ./third_party/absent/golang.org/x/term
	golang.org/x/tools => ./third_party/absent/golang.org/x/tools
	google.golang.org/protobuf => ./third_party/absent/google.golang.org/protobuf
	gopkg.in/inconshreveable/log15.v2 => ./third_party/absent/gopkg.in/inconshreveable/log15.v2
	honnef.co/go/tools => ./third_party/absent/honnef.co/go/tools
)
