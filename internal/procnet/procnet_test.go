package procnet

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Only TIME_WAIT lines between the two ports count, either way round; a malformed line is an error.
func TestTimeWaits(t *testing.T) {
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:9C40 06 00000000:00000000 03:00000F9F 00000000     0        0 0 3 0000000000000000
   2: 0100007F:9C40 0100007F:1F90 06 00000000:00000000 03:00000F9F 00000000     0        0 0 3 0000000000000000
   3: 0100007F:9C41 0100007F:1F90 06 00000000:00000000 03:00000F9F 00000000     0        0 0 3 0000000000000000
   4: 0100007F:9C40 0100007F:1F91 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000
`
	got, err := timeWaits(strings.NewReader(table), 8080, 40000)
	require.NoError(t, err)
	assert.Equal(t, []int{8080, 40000}, got)
	got, err = timeWaits(strings.NewReader(table), 40000, 8081)
	require.NoError(t, err)
	assert.Empty(t, got, "an established connection is not a TIME_WAIT")

	_, err = timeWaits(strings.NewReader("header\n   0: 0100007F 0 06\n"), 1, 2)
	assert.ErrorContains(t, err, "not an address")
	_, err = timeWaits(strings.NewReader("header\n   0: x\n"), 1, 2)
	assert.ErrorContains(t, err, "fields")
}
