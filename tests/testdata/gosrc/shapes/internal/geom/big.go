package geom

// Classify sorts a code into a long list of categories; it is deliberately huge.
func Classify(code int) string {
	result := ""
	if code == 0 {
		result = "category number 0 with a rather long descriptive label"
	}
	if code == 1 {
		result = "category number 1 with a rather long descriptive label"
	}
	if code == 2 {
		result = "category number 2 with a rather long descriptive label"
	}
	if code == 3 {
		result = "category number 3 with a rather long descriptive label"
	}
	if code == 4 {
		result = "category number 4 with a rather long descriptive label"
	}
	if code == 5 {
		result = "category number 5 with a rather long descriptive label"
	}
	if code == 6 {
		result = "category number 6 with a rather long descriptive label"
	}
	if code == 7 {
		result = "category number 7 with a rather long descriptive label"
	}
	if code == 8 {
		result = "category number 8 with a rather long descriptive label"
	}
	if code == 9 {
		result = "category number 9 with a rather long descriptive label"
	}
	if code == 10 {
		result = "category number 10 with a rather long descriptive label"
	}
	if code == 11 {
		result = "category number 11 with a rather long descriptive label"
	}
	if code == 12 {
		result = "category number 12 with a rather long descriptive label"
	}
	if code == 13 {
		result = "category number 13 with a rather long descriptive label"
	}
	if code == 14 {
		result = "category number 14 with a rather long descriptive label"
	}
	if code == 15 {
		result = "category number 15 with a rather long descriptive label"
	}
	if code == 16 {
		result = "category number 16 with a rather long descriptive label"
	}
	if code == 17 {
		result = "category number 17 with a rather long descriptive label"
	}
	if code == 18 {
		result = "category number 18 with a rather long descriptive label"
	}
	if code == 19 {
		result = "category number 19 with a rather long descriptive label"
	}
	if code == 20 {
		result = "category number 20 with a rather long descriptive label"
	}
	if code == 21 {
		result = "category number 21 with a rather long descriptive label"
	}
	if code == 22 {
		result = "category number 22 with a rather long descriptive label"
	}
	if code == 23 {
		result = "category number 23 with a rather long descriptive label"
	}
	if code == 24 {
		result = "category number 24 with a rather long descriptive label"
	}
	if code == 25 {
		result = "category number 25 with a rather long descriptive label"
	}
	if code == 26 {
		result = "category number 26 with a rather long descriptive label"
	}
	if code == 27 {
		result = "category number 27 with a rather long descriptive label"
	}
	if code == 28 {
		result = "category number 28 with a rather long descriptive label"
	}
	if code == 29 {
		result = "category number 29 with a rather long descriptive label"
	}
	if code == 30 {
		result = "category number 30 with a rather long descriptive label"
	}
	if code == 31 {
		result = "category number 31 with a rather long descriptive label"
	}
	if code == 32 {
		result = "category number 32 with a rather long descriptive label"
	}
	if code == 33 {
		result = "category number 33 with a rather long descriptive label"
	}
	if code == 34 {
		result = "category number 34 with a rather long descriptive label"
	}
	if code == 35 {
		result = "category number 35 with a rather long descriptive label"
	}
	if code == 36 {
		result = "category number 36 with a rather long descriptive label"
	}
	if code == 37 {
		result = "category number 37 with a rather long descriptive label"
	}
	if code == 38 {
		result = "category number 38 with a rather long descriptive label"
	}
	if code == 39 {
		result = "category number 39 with a rather long descriptive label"
	}
	if code == 40 {
		result = "category number 40 with a rather long descriptive label"
	}
	if code == 41 {
		result = "category number 41 with a rather long descriptive label"
	}
	if code == 42 {
		result = "category number 42 with a rather long descriptive label"
	}
	if code == 43 {
		result = "category number 43 with a rather long descriptive label"
	}
	if code == 44 {
		result = "category number 44 with a rather long descriptive label"
	}
	if code == 45 {
		result = "category number 45 with a rather long descriptive label"
	}
	if code == 46 {
		result = "category number 46 with a rather long descriptive label"
	}
	if code == 47 {
		result = "category number 47 with a rather long descriptive label"
	}
	if code == 48 {
		result = "category number 48 with a rather long descriptive label"
	}
	if code == 49 {
		result = "category number 49 with a rather long descriptive label"
	}
	if code == 50 {
		result = "category number 50 with a rather long descriptive label"
	}
	if code == 51 {
		result = "category number 51 with a rather long descriptive label"
	}
	if code == 52 {
		result = "category number 52 with a rather long descriptive label"
	}
	if code == 53 {
		result = "category number 53 with a rather long descriptive label"
	}
	if code == 54 {
		result = "category number 54 with a rather long descriptive label"
	}
	if code == 55 {
		result = "category number 55 with a rather long descriptive label"
	}
	if code == 56 {
		result = "category number 56 with a rather long descriptive label"
	}
	if code == 57 {
		result = "category number 57 with a rather long descriptive label"
	}
	if code == 58 {
		result = "category number 58 with a rather long descriptive label"
	}
	if code == 59 {
		result = "category number 59 with a rather long descriptive label"
	}
	if code == 60 {
		result = "category number 60 with a rather long descriptive label"
	}
	if code == 61 {
		result = "category number 61 with a rather long descriptive label"
	}
	if code == 62 {
		result = "category number 62 with a rather long descriptive label"
	}
	if code == 63 {
		result = "category number 63 with a rather long descriptive label"
	}
	if code == 64 {
		result = "category number 64 with a rather long descriptive label"
	}
	if code == 65 {
		result = "category number 65 with a rather long descriptive label"
	}
	if code == 66 {
		result = "category number 66 with a rather long descriptive label"
	}
	if code == 67 {
		result = "category number 67 with a rather long descriptive label"
	}
	if code == 68 {
		result = "category number 68 with a rather long descriptive label"
	}
	if code == 69 {
		result = "category number 69 with a rather long descriptive label"
	}
	if code == 70 {
		result = "category number 70 with a rather long descriptive label"
	}
	if code == 71 {
		result = "category number 71 with a rather long descriptive label"
	}
	if code == 72 {
		result = "category number 72 with a rather long descriptive label"
	}
	if code == 73 {
		result = "category number 73 with a rather long descriptive label"
	}
	if code == 74 {
		result = "category number 74 with a rather long descriptive label"
	}
	if code == 75 {
		result = "category number 75 with a rather long descriptive label"
	}
	if code == 76 {
		result = "category number 76 with a rather long descriptive label"
	}
	if code == 77 {
		result = "category number 77 with a rather long descriptive label"
	}
	if code == 78 {
		result = "category number 78 with a rather long descriptive label"
	}
	if code == 79 {
		result = "category number 79 with a rather long descriptive label"
	}
	if code == 80 {
		result = "category number 80 with a rather long descriptive label"
	}
	if code == 81 {
		result = "category number 81 with a rather long descriptive label"
	}
	if code == 82 {
		result = "category number 82 with a rather long descriptive label"
	}
	if code == 83 {
		result = "category number 83 with a rather long descriptive label"
	}
	if code == 84 {
		result = "category number 84 with a rather long descriptive label"
	}
	if code == 85 {
		result = "category number 85 with a rather long descriptive label"
	}
	if code == 86 {
		result = "category number 86 with a rather long descriptive label"
	}
	if code == 87 {
		result = "category number 87 with a rather long descriptive label"
	}
	if code == 88 {
		result = "category number 88 with a rather long descriptive label"
	}
	if code == 89 {
		result = "category number 89 with a rather long descriptive label"
	}
	if code == 90 {
		result = "category number 90 with a rather long descriptive label"
	}
	if code == 91 {
		result = "category number 91 with a rather long descriptive label"
	}
	if code == 92 {
		result = "category number 92 with a rather long descriptive label"
	}
	if code == 93 {
		result = "category number 93 with a rather long descriptive label"
	}
	if code == 94 {
		result = "category number 94 with a rather long descriptive label"
	}
	if code == 95 {
		result = "category number 95 with a rather long descriptive label"
	}
	if code == 96 {
		result = "category number 96 with a rather long descriptive label"
	}
	if code == 97 {
		result = "category number 97 with a rather long descriptive label"
	}
	if code == 98 {
		result = "category number 98 with a rather long descriptive label"
	}
	if code == 99 {
		result = "category number 99 with a rather long descriptive label"
	}
	if code == 100 {
		result = "category number 100 with a rather long descriptive label"
	}
	if code == 101 {
		result = "category number 101 with a rather long descriptive label"
	}
	if code == 102 {
		result = "category number 102 with a rather long descriptive label"
	}
	if code == 103 {
		result = "category number 103 with a rather long descriptive label"
	}
	if code == 104 {
		result = "category number 104 with a rather long descriptive label"
	}
	if code == 105 {
		result = "category number 105 with a rather long descriptive label"
	}
	if code == 106 {
		result = "category number 106 with a rather long descriptive label"
	}
	if code == 107 {
		result = "category number 107 with a rather long descriptive label"
	}
	if code == 108 {
		result = "category number 108 with a rather long descriptive label"
	}
	if code == 109 {
		result = "category number 109 with a rather long descriptive label"
	}
	if code == 110 {
		result = "category number 110 with a rather long descriptive label"
	}
	if code == 111 {
		result = "category number 111 with a rather long descriptive label"
	}
	if code == 112 {
		result = "category number 112 with a rather long descriptive label"
	}
	if code == 113 {
		result = "category number 113 with a rather long descriptive label"
	}
	if code == 114 {
		result = "category number 114 with a rather long descriptive label"
	}
	if code == 115 {
		result = "category number 115 with a rather long descriptive label"
	}
	if code == 116 {
		result = "category number 116 with a rather long descriptive label"
	}
	if code == 117 {
		result = "category number 117 with a rather long descriptive label"
	}
	if code == 118 {
		result = "category number 118 with a rather long descriptive label"
	}
	if code == 119 {
		result = "category number 119 with a rather long descriptive label"
	}
	return result
}
